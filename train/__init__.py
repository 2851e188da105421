"""train: image classifiers by transfer learning or from scratch, with checkpoints and cards."""

import deploy.limits  # noqa: F401  (before any cv2 import: OpenCV reads its image-size limit once)
