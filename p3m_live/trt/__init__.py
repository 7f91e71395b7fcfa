"""TensorRT: the engine store (plans and their sidecars), the engine builder, and the
device-slot scheduling that the TensorRT runtime shares with backends that run here."""
