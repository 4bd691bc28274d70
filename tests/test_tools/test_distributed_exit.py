"""How a finished distributed run of our tools ends
(tips_mmseg.cli.mmseg_tool.exit_distributed_run)."""
import textwrap

from tests.helpers import run_python

# A one-process gloo group, plus what a normal exit would finish: an atexit
# handler, a logging file handler, a non-daemon thread still writing, an
# unflushed print. None of them may be lost by leaving without finalization.
SCRIPT = textwrap.dedent('''
    import atexit, logging, sys, threading, time
    import torch
    import torch.distributed as dist
    from tips_mmseg.cli.mmseg_tool import exit_distributed_run

    if sys.argv[1] == 'group':
        dist.init_process_group('gloo', store=dist.HashStore(), rank=0,
                                world_size=1)
        t = torch.ones(3)
        dist.all_reduce(t)
    atexit.register(lambda: open('atexit.txt', 'w').write('ran'))
    log = logging.getLogger('probe')
    log.addHandler(logging.FileHandler('probe.log', delay=True))
    log.warning('logged')
    def late_writer():
        time.sleep(0.5)
        open('thread.txt', 'w').write('joined')
    threading.Thread(target=late_writer).start()
    sys.stdout.write('printed')
    exit_distributed_run()
    print(' and returned, group:', dist.is_available() and
          dist.is_initialized())
    sys.exit(3)
''')


def _run_probe(tmp_path, mode):
    (tmp_path / 'probe.py').write_text(SCRIPT)
    return run_python(['probe.py', mode], cwd=tmp_path)


def test_with_a_group_it_closes_it_and_exits_0_after_a_normal_exit_s_work(
        tmp_path):
    result = _run_probe(tmp_path, 'group')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == 'printed'
    assert (tmp_path / 'atexit.txt').read_text() == 'ran'
    assert (tmp_path / 'probe.log').read_text() == 'logged\n'
    assert (tmp_path / 'thread.txt').read_text() == 'joined'


def test_without_a_group_it_returns_and_the_tool_exits_as_usual(tmp_path):
    result = _run_probe(tmp_path, 'none')
    assert result.returncode == 3, result.stderr[-3000:]
    assert result.stdout == 'printed and returned, group: False\n'
    assert (tmp_path / 'atexit.txt').read_text() == 'ran'
    assert (tmp_path / 'thread.txt').read_text() == 'joined'
