"""Hand-made result rows of the MSB-consistency study, shared by its tests."""

SETTINGS = dict(iters=10, max_shift=4)


def make_row(variant, seed, msb_soft, massc, phase=0.5, **extra):
    row = dict(variant=variant, seed=seed, msb_soft=msb_soft,
               msb_pixel=msb_soft / 2, msb_phase=phase, mASSC=massc,
               mASSC_circular=massc + 1, mASSC_worst=massc - 5,
               shift_fidelity=massc - 10, mIoU=40.0 + seed,
               settings=dict(SETTINGS))
    row.update(extra)
    return row


def study_rows():
    """Five variants x two seeds; MSB soft falls as consistency rises."""
    rows = []
    for index, variant in enumerate(('vanilla', 'blurpool', 'aps', 'lps',
                                     'tips')):
        for seed in (0, 1):
            msb = 0.7 - 0.05 * index + 0.01 * seed
            rows.append(make_row(variant, seed, msb, 80 + 3 * index - seed,
                                 phase=None if variant == 'vanilla' else 0.6))
    return rows
