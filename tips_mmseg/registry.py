"""tips_mmseg's own registry: downsampling layers.

``DOWNSAMPLERS`` is a child of mmseg's ``MODELS`` with scope ``tips_mmseg``:

* ``build_downsample`` (every backbone and wrapper of tips_mmseg) builds
  from it, so a layer registered here works everywhere::

      from tips_mmseg.registry import DOWNSAMPLERS

      @DOWNSAMPLERS.register_module()
      class MyDown(nn.Module):
          def __init__(self, channels, stride=2): ...

* its names (TIPS, BlurPool, APS, LPS, PolyphaseFollower) live apart from
  mmseg's ``MODELS``: another plugin's ``APS`` there does not clash with
  ours;
* mmseg's ``MODELS`` still reaches them with the scope prefix:
  ``MODELS.build(dict(type='tips_mmseg.TIPS', channels=64))``.
"""
from mmengine.registry import Registry
from mmseg.registry import MODELS

DOWNSAMPLERS = Registry(
    'downsampler',
    parent=MODELS,
    scope='tips_mmseg',
    locations=['tips_mmseg.models.layers'])
