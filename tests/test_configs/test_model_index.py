"""model-index.yml and each folder's metafile.yaml, read the way mim and
mmengine read them: every config is listed once, every entry names a config
that exists, and every figure is either measured (with its command) or
mmseg's own published reference for the same recipe."""
import os.path as osp
import re

import mmseg
import pytest
from mmengine.fileio import load

from test_deeplabv3plus_configs import CONFIGS, ROOT  # noqa: I100

REPO = osp.dirname(ROOT)
MMSEG_CONFIGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')


def index_models():
    """(metafile, model) pairs, as mmengine's
    ``BaseInferencer._get_models_from_metafile`` walks them."""
    index = load(osp.join(REPO, 'model-index.yml'))
    for meta_path in index['Import']:
        for model in load(osp.join(REPO, meta_path))['Models']:
            yield meta_path, model


def search_table():
    """One row per model with its collection's fields folded in, the way
    ``mim search`` (mim.commands.search.convert2df) flattens the index:
    Metadata keys, ``<dataset>/<metric>`` per result, config, model."""
    index = load(osp.join(REPO, 'model-index.yml'))
    collections = {c['Name']: c for c in index['Collections']}
    rows = {}
    for _, model in index_models():
        row = dict(model['Metadata'])
        for result in model['Results']:  # mim iterates it: must be a list
            for metric, value in result['Metrics'].items():
                row[f"{result['Dataset'].lower()}/{metric.lower()}"] = value
        row['config'] = model['Config']
        row['model'] = model['In Collection'].lower()
        collection = collections[model['In Collection']]
        row.setdefault('readme', collection['README'])
        assert model['Name'] not in rows, f"{model['Name']} listed twice"
        rows[model['Name']] = row
    return rows


def test_every_config_is_indexed_and_every_entry_exists():
    entries = list(index_models())
    indexed = sorted(m['Config'] for _, m in entries)
    configs = sorted(osp.relpath(c, REPO) for c in CONFIGS)
    assert indexed == configs  # every config once, nothing else
    for meta_path, model in entries:
        assert osp.isfile(osp.join(REPO, model['Config'])), model['Config']
        assert model['Name'] == osp.basename(model['Config'])[:-3]
        assert osp.dirname(model['Config']) == osp.dirname(meta_path)


def test_mim_search_lists_every_config():
    rows = search_table()
    assert sorted(r['config'] for r in rows.values()) == sorted(
        osp.relpath(c, REPO) for c in CONFIGS)
    for name, row in rows.items():
        assert osp.isfile(osp.join(REPO, row['readme']))
        assert row['model'] in {'vanilla', 'blurpool', 'aps', 'lps', 'tips'}
        assert row['model'] in name or (row['model'] == 'vanilla'
                                        and '-vanilla_' in name)
    tips = [n for n, r in rows.items() if r['model'] == 'tips']
    assert tips and all('-tips' in n for n in tips)


def test_every_folder_has_a_readme_listing_its_configs():
    for meta_path, model in index_models():
        with open(osp.join(REPO, osp.dirname(meta_path), 'README.md')) as f:
            readme = f.read()
        assert f"[{model['Name']}]({model['Name']}.py)" in readme


@pytest.mark.parametrize('meta_path, model', list(index_models()),
                         ids=lambda x: x['Name'] if isinstance(x, dict) else
                         '')
def test_figures_are_measured_or_mmseg_references(meta_path, model):
    meta = model['Metadata']
    if model['Results']:
        # Only toy configs have been trained: the DeepLabV3+ ones by
        # `make demo`, the SegFormer pair by tools/train.py (docs/zoo.md).
        assert model['Config'].startswith('configs/toy/')
        assert meta['Status'].startswith(
            'measured: make demo' if 'deeplabv3plus_' in model['Config']
            else 'measured: python tools/train.py ' + model['Config'])
        for result in model['Results']:
            assert set(result['Metrics']) == {'mIoU', 'mASSC'}
    else:
        assert meta['Status'] == 'not trained yet'
    # The reference is mmseg's vanilla config of the same backbone and
    # recipe (our name without the variant), with the mIoU mmseg publishes;
    # none where mmseg publishes none (e.g. R18 on VOC).
    name = model['Name']
    algo = name.split('_')[0]
    ours = re.sub(r'-(vanilla|blurpool|aps|lps|tips)(-release|-circ-unpool)?_',
                  '_', name)
    published = {
        m['Name']: m['Results']['Metrics']['mIoU']
        for m in load(osp.join(MMSEG_CONFIGS, algo, 'metafile.yaml'))
        ['Models']
    }
    if ours not in published:
        assert 'mmseg vanilla config' not in meta
        assert 'mmseg vanilla mIoU' not in meta
        return
    assert meta['mmseg vanilla config'] == f'mmseg::{algo}/{ours}.py'
    assert meta['mmseg vanilla mIoU'] == published[ours]
