"""Running the model: backends (ONNX Runtime, TensorRT, Triton), the dynamic batcher, engine builds."""
