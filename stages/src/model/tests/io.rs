//! Checkpoint round trips and load errors.

use dfdx::prelude::*;

use super::*;
use crate::model::checkpoint;
use crate::model::{DeepConvNet, Mode, ModelError, ParamTreeExt, Student, Teacher};

/// A student whose running statistics are no longer the initial ones.
fn trained_student(dev: &Cpu) -> Student<f32, Cpu> {
    let mut s = Student::<f32, Cpu>::new(dev, &tiny_student(), 3).unwrap();
    s.forward(input::<f32>(dev, (4, 2, 24), 1), Mode::Train)
        .unwrap();
    s
}

#[test]
fn checkpoints_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Cpu::seed_from_u64(0);

    let student = trained_student(&dev);
    let path = dir.path().join("student.safetensors");
    student.save(&path).unwrap();
    let loaded = Student::<f32, Cpu>::load(&dev, &path).unwrap();
    assert_eq!(loaded.config, student.config);
    let x = input::<f32>(&dev, (3, 2, 24), 2);
    assert_eq!(
        loaded.predict(x.clone()).unwrap().as_vec(),
        student.predict(x.clone()).unwrap().as_vec()
    );
    let all = |s: &Student<f32, Cpu>| {
        s.tensors()
            .into_iter()
            .map(|t| t.tensor.to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(all(&loaded), all(&student));

    let mut teacher = Teacher::<f64, Cpu>::new(&dev, &tiny_teacher(), 4).unwrap();
    let eeg = input::<f64>(&dev, (3, 3, 24), 3);
    let eog = input::<f64>(&dev, (3, 2, 24), 4);
    teacher
        .forward(eeg.clone(), eog.clone(), Mode::Train)
        .unwrap();
    let path = dir.path().join("teacher.safetensors");
    teacher.save(&path).unwrap();
    let loaded = Teacher::<f64, Cpu>::load(&dev, &path).unwrap();
    assert_eq!(
        loaded.predict(eeg.clone(), eog.clone()).unwrap().as_vec(),
        teacher.predict(eeg, eog).unwrap().as_vec()
    );

    let net = DeepConvNet::<f32, Cpu>::new(&dev, &tiny_deepconvnet(), 5).unwrap();
    let path = dir.path().join("dcn.safetensors");
    net.save(&path).unwrap();
    let loaded = DeepConvNet::<f32, Cpu>::load(&dev, &path).unwrap();
    let x = input::<f32>(&dev, (2, 2, 64), 6);
    assert_eq!(
        loaded.predict(x.clone()).unwrap().as_vec(),
        net.predict(x).unwrap().as_vec()
    );
    assert_eq!(
        checkpoint::read_metadata(&path).unwrap()["network"],
        "deepconvnet"
    );
}

#[test]
fn bad_checkpoints_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Cpu::default();
    let student = trained_student(&dev);
    let path = dir.path().join("student.safetensors");
    student.save(&path).unwrap();

    let missing = dir.path().join("nope.safetensors");
    let err = Student::<f32, Cpu>::load(&dev, &missing).err().unwrap();
    assert!(matches!(err, ModelError::Checkpoint { .. }), "{err}");
    assert!(err.to_string().contains("nope.safetensors"), "{err}");

    let err = Teacher::<f32, Cpu>::load(&dev, &path).err().unwrap();
    assert!(err.to_string().contains("not a teacher"), "{err}");

    let err = Student::<f64, Cpu>::load(&dev, &path).err().unwrap();
    assert!(err.to_string().contains("F32"), "{err}");

    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Student::<f32, Cpu>::load(&dev, &truncated).err().unwrap();
    assert!(err.to_string().contains("not a safetensors file"), "{err}");
    std::fs::write(&truncated, b"abc").unwrap();
    assert!(Student::<f32, Cpu>::load(&dev, &truncated).is_err());

    // A network of another size cannot take these tensors.
    let mut other = Student::<f32, Cpu>::new(
        &dev,
        &StudentConfig {
            channels: 3,
            ..tiny_student()
        },
        1,
    )
    .unwrap();
    let err = checkpoint::load_into(&mut other, &path).err().unwrap();
    assert!(err.to_string().contains("branch.spatial.weight"), "{err}");
    // A model with fewer tensors than the file reports the extra ones.
    let mut dense = crate::model::Regressor::<f32, Cpu>::new(&dev, &Default::default(), 1).unwrap();
    assert!(checkpoint::load_into(&mut dense, &path).is_err());
}
