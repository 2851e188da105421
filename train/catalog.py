"""The names `edgevision train` offers, without torch: architectures and augmentation policies.

`train.models` registers a builder for each architecture here and refuses any other name;
`train.transforms` implements each policy. `edgevision train --help` reads only this module, so
help comes in a fraction of a second instead of the seconds an import of torch takes.
"""

from __future__ import annotations

LESSON_MODELS = ("dense", "mlp", "cnn", "multilayer-cnn", "lenet")
TORCHVISION_MODELS = (
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "efficientnet_b0", "vgg16",
)
ARCHITECTURES = (*LESSON_MODELS, *TORCHVISION_MODELS)

POLICIES = ("none", "digits", "natural")  # augmentation: none, small gray digits, natural photos
