"""benchmarks: latency, accuracy and size trade-offs of exported models, measured side by side."""

import deploy.limits  # noqa: F401  (before any cv2 import: OpenCV reads its image-size limit once)
