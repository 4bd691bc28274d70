"""tips_mmseg changes nothing for code that is not ours: the behaviours of
tools/check_plugin_hygiene.py print the same lines in three fresh
interpreters: without the plugin, after ``import tips_mmseg``, and after
the opt-in ``tips_mmseg.compat.enable()`` as well."""
import os.path as osp

from tests.helpers import REPO_ROOT, run_python

SCRIPT = osp.join(REPO_ROOT, 'tools', 'check_plugin_hygiene.py')


def result_lines(*args, cwd):
    result = run_python([SCRIPT] + list(args), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return [line[2:] for line in result.stdout.splitlines()
            if line.startswith('| ')]


def test_plain_plugin_and_enabled_runs_print_the_same_lines(tmp_path):
    plain = result_lines(cwd=tmp_path)
    plugin = result_lines('--plugin', cwd=tmp_path)
    enabled = result_lines('--enable', cwd=tmp_path)
    assert len(plain) >= 15
    assert plugin == plain
    assert enabled == plain
    # the values a plugin used to change, as mmengine/torch give them
    text = '\n'.join(plugin)
    assert 'put new file: mode 0o644' in text
    assert "put to a symlink: link kept True, target holds b'through'" in text
    assert 'remote last_checkpoint: s3://bucket/run/iter_8.pth' in text
    assert 'IterableDataset config: [[0, 1], [2, 3]]' in text
    assert "code-running checkpoint via mmengine: raises, caught as " \
        "['UnpicklingError']" in text
    assert "launcher with CUDA available: ['set_device(0)', " \
        "'init_process_group(nccl)']" in text
    assert 'mmengine loader for a local path: load_from_local' in text
    # torch >= 2.6: mmengine alone cannot resume its own checkpoint (the
    # opt-in CheckpointSafetyHook can: tests/test_utils/test_atomic_io.py)
    assert "resume a mmengine checkpoint via mmengine: raises, caught as " \
        "['UnpicklingError']" in text
