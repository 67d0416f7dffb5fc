"""Op-level profiler: .tflite/ONNX export, LiteRT / ONNX Runtime / PyTorch runners,
kernel/block/model workloads, and the persistent SQLite measurement store with device fingerprints."""
