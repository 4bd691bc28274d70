"""Every relative link in README.md and docs/*.md points at a tracked file."""
import glob
import os.path as osp
import re
import subprocess

import pytest

from tests.helpers import REPO_ROOT

# [text](target) and ![alt](target); the target ends at a space or ')'.
LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
EXTERNAL = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')  # http:, https:, mailto:


def markdown_files():
    return [osp.join(REPO_ROOT, 'README.md')] + sorted(
        glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))


def relative_links(text):
    """Relative link targets of a markdown text, without #fragments."""
    # Code blocks and inline code hold examples, not links.
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    text = re.sub(r'`[^`\n]*`', '', text)
    targets = []
    for target in LINK.findall(text):
        if EXTERNAL.match(target) or target.startswith('#'):
            continue
        targets.append(target.split('#', 1)[0])
    return targets


def tracked_files():
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO_ROOT,
                             capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pytest.skip('not a git checkout: cannot list tracked files')
    return {p for p in out.stdout.decode().split('\0') if p}


def test_link_parser_finds_relative_links_only():
    text = ('See [a](docs/a.md#part), ![fig](figures/x.png "t"), '
            '[web](https://example.com), [here](#top), `[x](not/a.md)` and\n'
            '```\n[y](neither.md)\n```')
    assert relative_links(text) == ['docs/a.md', 'figures/x.png']


@pytest.mark.parametrize('path', markdown_files(),
                         ids=lambda p: osp.relpath(p, REPO_ROOT))
def test_every_relative_link_resolves_to_a_tracked_file(path):
    tracked = tracked_files()
    with open(path, encoding='utf-8') as f:
        links = relative_links(f.read())
    folder = osp.dirname(path)
    broken = []
    for link in links:
        target = osp.relpath(osp.normpath(osp.join(folder, link)), REPO_ROOT)
        is_dir = any(p.startswith(target + '/') for p in tracked)
        if target.startswith('..') or not (target in tracked or is_dir):
            broken.append(link)
    assert not broken, (
        f'{osp.relpath(path, REPO_ROOT)} links to files that are not '
        f'tracked in the repository: {broken}')
