"""What scores pixels: the networks (seed CNN, forensic CNN), frozen pretrained encoders and their
feature store, the portable ONNX graphs, the TFLite runtime, and the experts built from them."""
