"""Which of mmseg's model families convert to shift-invariant downsampling.

For one representative config of every model family (folder) shipped with
mmseg, in a forked process with a time limit: convert it
(tools/convert_config.py), build the original and the converted model
small on the CPU (SyncBN -> BN, no weight downloads), load the original's
state dict into the converted model (every key must land; only the added
downsamplers' parameters may be missing), take one training step, and
list which strided convs / max-pools were converted and which were left
(with the reason). One row per family, then the totals::

    python tools/zoo_coverage.py [--downsample TIPS] [--size 64] [--jobs 2]
"""
import argparse
import json
import multiprocessing
import os
import os.path as osp
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from queue import Empty

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # `python tools/zoo_coverage.py`
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

import tips_mmseg  # noqa: E402,F401  (imported once, before the forks)
from tips_mmseg.apis.zoo_check import STATUSES  # noqa: E402

#: The smallest ordinary config of each family (by backbone size), so that
#: the CPU check stays short; any other config of a family shares its
#: backbone type and segmentor.
REPRESENTATIVES = {
    'ann': 'ann_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'apcnet': 'apcnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'beit': 'beit-base_upernet_8xb2-160k_ade20k-640x640.py',
    'bisenetv1':
    'bisenetv1_r18-d32-in1k-pre_4xb4-160k_cityscapes-1024x1024.py',
    'bisenetv2': 'bisenetv2_fcn_4xb4-160k_cityscapes-1024x1024.py',
    'ccnet': 'ccnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'cgnet': 'cgnet_fcn_4xb4-60k_cityscapes-680x680.py',
    'convnext': 'convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py',
    'danet': 'danet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'ddrnet': 'ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-1024x1024.py',
    'deeplabv3': 'deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'deeplabv3plus': 'deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'dmnet': 'dmnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'dnlnet': 'dnl_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'dpt': 'dpt_vit-b16_8xb2-160k_ade20k-512x512.py',
    'dsdl': 'cityscapes.py',
    'emanet': 'emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'encnet': 'encnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'erfnet': 'erfnet_fcn_4xb4-160k_cityscapes-512x1024.py',
    'fastfcn': 'fastfcn_r50-d32_jpu_aspp_4xb2-80k_cityscapes-512x1024.py',
    'fastscnn': 'fast_scnn_8xb4-160k_cityscapes-512x1024.py',
    'fcn': 'fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'gcnet': 'gcnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'hrnet': 'fcn_hr18s_4xb2-40k_cityscapes-512x1024.py',
    'icnet': 'icnet_r18-d8-in1k-pre_4xb2-160k_cityscapes-832x832.py',
    'isanet': 'isanet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'knet': 'knet-s3_r50-d8_deeplabv3_8xb2-adamw-80k_ade20k-512x512.py',
    'mae': 'mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py',
    'mask2former': 'mask2former_r50_8xb2-160k_ade20k-512x512.py',
    'maskformer': 'maskformer_r50-d32_8xb2-160k_ade20k-512x512.py',
    'mobilenet_v2':
    'mobilenet-v2-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py',
    'mobilenet_v3':
    'mobilenet-v3-d8-s_lraspp_4xb4-320k_cityscapes-512x1024.py',
    'nonlocal_net': 'nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'ocrnet': 'ocrnet_hr18s_4xb2-40k_cityscapes-512x1024.py',
    'pidnet': 'pidnet-s_2xb6-120k_1024x1024-cityscapes.py',
    'point_rend': 'pointrend_r50_4xb2-80k_cityscapes-512x1024.py',
    'poolformer': 'fpn_poolformer_s12_8xb4-40k_ade20k-512x512.py',
    'psanet': 'psanet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'pspnet': 'pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'resnest': 'resnest_s101-d8_deeplabv3_4xb2-80k_cityscapes-512x1024.py',
    'san': 'san-vit-b16_coco-stuff164k-640x640.py',
    'segformer': 'segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py',
    'segmenter': 'segmenter_vit-t_mask_8xb1-160k_ade20k-512x512.py',
    'segnext': 'segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py',
    'sem_fpn': 'fpn_r50_4xb2-80k_cityscapes-512x1024.py',
    'setr': 'setr_vit-l_naive_8xb2-160k_ade20k-512x512.py',
    'stdc': 'stdc1_4xb12-80k_cityscapes-512x1024.py',
    'swin': 'swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_'
            'ade20k-512x512.py',
    'twins': 'twins_pcpvt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py',
    'unet': 'unet-s5-d16_fcn_4xb4-40k_drive-64x64.py',
    'upernet': 'upernet_r18_4xb2-40k_cityscapes-512x1024.py',
    'vit': 'vit_deit-s16_upernet_8xb2-80k_ade20k-512x512.py',
    'vpd': 'vpd_sd_4xb8-25k_nyu-480x480.py',
}


#: Families whose vanilla model needs larger images than ``--size``
#: (LR-ASPP average-pools its 1/8 map with a 49 x 49 window).
SIZES = {'mobilenet_v3': 400}


def families():
    """``{family: 'mmseg::family/config.py'}`` of the installed mmseg."""
    import mmseg
    root = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
    found = {}
    for family in sorted(os.listdir(root)):
        folder = osp.join(root, family)
        if family.startswith('_') or not osp.isdir(folder):
            continue
        configs = sorted(f for f in os.listdir(folder) if f.endswith('.py'))
        if not configs:
            continue
        name = REPRESENTATIVES.get(family)
        found[family] = f'mmseg::{family}/' + (
            name if name in configs else configs[0])
    return found


def _check(config, args, queue):
    """In a forked child: one family; its result goes on ``queue``."""
    from tips_mmseg.apis.zoo_check import round_trip

    # Only the table reaches the terminal (the models' own logs do not).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        size = SIZES.get(config.split('::')[1].split('/')[0], args.size)
        result = round_trip(config, args.downsample, size)
        if result['status'] == 'refused' and \
                'non_overlapping=convert' in result['reason']:
            # A ViT-like patch embedding only: does it convert on request?
            retry = round_trip(config, args.downsample, size,
                               dict(non_overlapping='convert'))
            if retry['status'] == 'ok':
                result = dict(retry,
                              status='ok with non_overlapping=convert')
            else:
                result['reason'] += (
                    f" With non_overlapping=convert: {retry['status']}: "
                    f"{retry['reason']}")
        result['missing_keys'] = len(result['missing_keys'])
    except BaseException as e:  # noqa: BLE001  (reported as a row)
        result = dict(config=config, status='FAILED',
                      reason=f'{type(e).__name__}: {e}'[:300],
                      converted=[], skip_reasons={})
    queue.put(result)


def _run_family(family, config, args):
    """One family in a forked process (torch and mmseg are imported once,
    in the parent) with a time limit."""
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    start = time.time()
    proc = ctx.Process(target=_check, args=(config, args, queue))
    proc.start()
    try:
        result = queue.get(timeout=args.timeout)
    except Empty:
        result = dict(config=config, status='timeout',
                      reason=f'over {args.timeout} s' if proc.is_alive()
                      else f'the check died (exit code {proc.exitcode})',
                      converted=[], skip_reasons={})
    if proc.is_alive():
        proc.terminate()
    proc.join()
    result['family'] = family
    result['seconds'] = round(time.time() - start, 1)
    return result


def _row(r) -> str:
    left = '; '.join(f'{n}: {why.split(":")[0].split(" (")[0]}'
                     for n, why in r['skip_reasons'].items())
    n_left = len(r['skip_reasons'])
    detail = r['reason'] if not r['status'].startswith('ok') else (
        f"{len(r['converted'])} converted, {n_left} left"
        + (f' ({left})' if left else ''))
    config = r['config'].split('/', 1)[-1]
    detail = ' '.join(detail.replace('|', '/').split())
    return (f"| {r['family']} | {config} | {r['status']} | {detail} | "
            f"{r['seconds']} |")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('--downsample', default='TIPS',
                        choices=('TIPS', 'BlurPool', 'APS', 'LPS'))
    parser.add_argument('--size', type=int, default=64,
                        help='side of the training images')
    parser.add_argument('--jobs', type=int, default=2,
                        help='families checked at a time')
    parser.add_argument('--timeout', type=int, default=240,
                        help='seconds per family')
    parser.add_argument('--family', nargs='+', help='only these families')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    # One thread per check: --jobs checks share the cores.
    torch.set_num_threads(1)
    todo = families()
    if args.family:
        unknown = set(args.family) - set(todo)
        if unknown:
            parser.error(f'unknown families {sorted(unknown)}; mmseg has '
                         f'{sorted(todo)}')
        todo = {f: todo[f] for f in args.family}
    start = time.time()
    print('| family | config | status | converted / left (why) or reason | '
          's |')
    print('|---|---|---|---|---|')
    results = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(_run_family, f, c, args)
                   for f, c in todo.items()]
        for future in futures:
            results.append(future.result())
            print(_row(results[-1]), flush=True)
    counts = Counter(r['status'] for r in results)
    print(f'\ntotal: {len(results)} families: ' + ', '.join(
        f'{counts[s]} {s}' for s in STATUSES if counts[s])
        + f' ({time.time() - start:.0f} s, {args.downsample}, '
        f'{args.size}x{args.size})')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=1)
    return 1 if counts['FAILED'] else 0


if __name__ == '__main__':
    sys.exit(main())
