//! Networks in dfdx: the per-modality branch, gated fusion, teacher, student, DeepConvNet.
