"""swift-app: swift app and swift web-ui (gradio)."""
