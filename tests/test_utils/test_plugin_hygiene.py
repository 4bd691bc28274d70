"""``import tips_mmseg`` changes nothing for code that is not ours: the
behaviours of tools/check_plugin_hygiene.py print the same lines in two
fresh interpreters, without and with the plugin (except the resume fix)."""
import os.path as osp

from tests.helpers import REPO_ROOT, run_python

SCRIPT = osp.join(REPO_ROOT, 'tools', 'check_plugin_hygiene.py')


def result_lines(*args, cwd):
    result = run_python([SCRIPT] + list(args), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return [line[2:] for line in result.stdout.splitlines()
            if line.startswith('| ')]


def test_plain_and_plugin_runs_print_the_same_lines(tmp_path):
    plain = result_lines(cwd=tmp_path)
    plugin = result_lines('--plugin', cwd=tmp_path)
    assert len(plain) == len(plugin) >= 15
    fixed = [i for i, line in enumerate(plain) if line.startswith('[fix]')]
    same = [(a, b) for i, (a, b) in enumerate(zip(plain, plugin))
            if i not in fixed]
    assert [a for a, _ in same] == [b for _, b in same]
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
    # the one intended difference: mmengine resumes its own checkpoint
    [i] = fixed
    assert 'caught as' in plain[i] and plugin[i].endswith(': ok')
