//! Training loops, losses, distillation, dynamic feedback, metrics.
