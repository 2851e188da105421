"""camera_app: classify camera or video frames live with any exported model (no torch)."""
