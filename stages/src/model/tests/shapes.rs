//! Shapes of every block, parameter counts, input and config validation.

use dfdx::prelude::*;

use super::*;
use crate::model::branch::Branch;
use crate::model::config::RegressorConfig;
use crate::model::fusion::{align_teacher_feature, CrossModalFusion, DepthFusion};
use crate::model::init::Init;
use crate::model::score::ScoreBlock;
use crate::model::ScoreBn;
use crate::model::{DeepConvNet, Mode, ModelError, ParamTreeExt, Regressor, Student, Teacher};

#[test]
fn branch_keeps_every_depth() {
    let dev = Cpu::seed_from_u64(0);
    let cfg = tiny_branch();
    let mut init = Init::new(&dev, 1);
    let mut branch = Branch::<f32, Cpu>::new(&mut init, 3, &cfg).unwrap();
    assert_eq!(branch.tokens(), 5);
    for mode in [Mode::Train, Mode::Eval] {
        let depths = branch
            .forward(input::<f32>(&dev, (4, 3, 24), 2), mode)
            .unwrap();
        assert_eq!(depths.len(), 3);
        for h in &depths {
            assert_eq!(*h.shape(), (4, 5, 8));
        }
        // The depths differ (each is one more block deep).
        assert_ne!(depths[0].as_vec(), depths[1].as_vec());
    }
}

#[test]
fn default_branch_has_61_tokens() {
    assert_eq!(BranchConfig::default().tokens(), 61);
}

#[test]
fn score_block_gates_within_unit_interval() {
    let dev = Cpu::seed_from_u64(0);
    let mut init = Init::new(&dev, 3);
    for axis in [ScoreBn::Tokens, ScoreBn::Features] {
        let b = BranchConfig {
            dim: 8,
            score_bn: axis,
            ..BranchConfig::default()
        };
        let mut block = ScoreBlock::<f32, Cpu>::new(&mut init, 5, &b).unwrap();
        assert_eq!(
            block.bn1.channels(),
            if axis == ScoreBn::Tokens { 5 } else { 8 }
        );
        gates_within_unit_interval(&dev, &mut block);
    }
}

fn gates_within_unit_interval(dev: &Cpu, block: &mut ScoreBlock<f32, Cpu>) {
    let x = input::<f32>(dev, (3, 5, 8), 4);
    let s = block.scores(x.clone(), Mode::Train).unwrap();
    assert_eq!(*s.shape(), (3, 5, 8));
    assert!(s.as_vec().iter().all(|v| v.abs() < 1.0));
    let e = block.forward(x.clone(), Mode::Eval).unwrap();
    let s = block.scores(x.clone(), Mode::Eval).unwrap();
    let expect: Vec<f32> = x
        .as_vec()
        .iter()
        .zip(s.as_vec())
        .map(|(a, b)| a * b)
        .collect();
    assert_eq!(e.as_vec(), expect);
}

fn width_8() -> BranchConfig {
    BranchConfig {
        dim: 8,
        ..BranchConfig::default()
    }
}

#[test]
fn fusions_have_the_spec_shapes() {
    let dev = Cpu::seed_from_u64(0);
    let mut init = Init::new(&dev, 5);
    let depths = |seed| {
        (0..3u64)
            .map(|i| input::<f32>(&dev, (2, 5, 8), seed + i))
            .collect::<Vec<_>>()
    };
    let mut cross = CrossModalFusion::<f32, Cpu>::new(&mut init, 3, 10, &width_8()).unwrap();
    assert_eq!(cross.pairs.len(), 2);
    let f = cross.forward(depths(10), depths(20), Mode::Train).unwrap();
    assert_eq!(*f.shape(), (2, 10, 8));
    let a = align_teacher_feature(f.clone()).unwrap();
    assert_eq!(*a.shape(), (2, 5, 8));
    let fv = f.as_vec();
    let av = a.as_vec();
    // F_T'[b, t, d] = F_T[b, t, d] + F_T[b, t + 5, d].
    for b in 0..2 {
        for t in 0..5 {
            for d in 0..8 {
                let want = fv[(b * 10 + t) * 8 + d] + fv[(b * 10 + t + 5) * 8 + d];
                assert!((av[(b * 5 + t) * 8 + d] - want).abs() < 1e-6);
            }
        }
    }
    let mut depth = DepthFusion::<f32, Cpu>::new(&mut init, 3, 5, &width_8()).unwrap();
    assert_eq!(
        *depth.forward(depths(30), Mode::Eval).unwrap().shape(),
        (2, 5, 8)
    );
}

#[test]
fn networks_return_logits_and_features() {
    let dev = Cpu::seed_from_u64(0);
    let mut student = Student::<f32, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let out = student
        .forward(input(&dev, (6, 2, 24), 1), Mode::Train)
        .unwrap();
    assert_eq!(*out.logits.shape(), (6, 2));
    assert_eq!(*out.feature.shape(), (6, 5, 8));
    assert_eq!(*out.fusion.shape(), (6, 5, 8));

    let mut teacher = Teacher::<f32, Cpu>::new(&dev, &tiny_teacher(), 1).unwrap();
    let out = teacher
        .forward(
            input(&dev, (6, 3, 24), 2),
            input(&dev, (6, 2, 24), 3),
            Mode::Train,
        )
        .unwrap();
    assert_eq!(*out.logits.shape(), (6, 2));
    assert_eq!(*out.feature.shape(), (6, 5, 8));
    assert_eq!(*out.fusion.shape(), (6, 10, 8));

    let mut dcn = DeepConvNet::<f32, Cpu>::new(&dev, &tiny_deepconvnet(), 1).unwrap();
    assert_eq!(dcn.config.lengths().unwrap(), vec![31, 14, 6, 2]);
    let logits = dcn
        .forward(input(&dev, (6, 2, 64), 4), Mode::Train)
        .unwrap();
    assert_eq!(*logits.shape(), (6, 2));

    let reg = Regressor::<f32, Cpu>::new(
        &dev,
        &RegressorConfig {
            tokens_in: 5,
            tokens_out: 10,
            dim_in: 8,
            dim_out: 8,
        },
        1,
    )
    .unwrap();
    assert_eq!(*reg.forward(out.feature).unwrap().shape(), (6, 10, 8));
}

/// Our default configuration — 8 heads of width 8 (PyTorch's `nn.MultiheadAttention`
/// split, not Keras' `key_dim = embed_dim`), token-axis score batch norms, no weight
/// decay — has the parameter counts the spec gives for the paper's networks.
#[test]
fn our_default_config_head_dim_8_token_bn_has_the_spec_parameter_counts() {
    let dev = Cpu::default();
    let teacher = Teacher::<f32, Cpu>::new(&dev, &TeacherConfig::default(), 0).unwrap();
    assert_eq!(teacher.num_trainable_params(), 1_354_658);
    let student = Student::<f32, Cpu>::new(&dev, &StudentConfig::default(), 0).unwrap();
    assert_eq!(student.num_trainable_params(), 648_862);
}

/// `score_bn: features` trades each score batch norm's 2·tokens parameters for 2·dim:
/// the teacher has 4 score blocks over 122 tokens, the student 3 over 61, 2 norms each.
#[test]
fn feature_axis_score_bn_changes_only_the_norm_parameters() {
    let dev = Cpu::default();
    let features = BranchConfig {
        score_bn: ScoreBn::Features,
        ..BranchConfig::default()
    };
    let t = TeacherConfig {
        branch: features.clone(),
        ..TeacherConfig::default()
    };
    let teacher = Teacher::<f32, Cpu>::new(&dev, &t, 0).unwrap();
    assert_eq!(
        teacher.num_trainable_params(),
        1_354_658 - 4 * 2 * 2 * (122 - 64)
    );
    let s = StudentConfig {
        branch: features,
        ..StudentConfig::default()
    };
    let mut student = Student::<f32, Cpu>::new(&dev, &s, 0).unwrap();
    assert_eq!(
        student.num_trainable_params(),
        648_862 + 3 * 2 * 2 * (64 - 61)
    );
    let out = student
        .forward(input(&dev, (2, 2, 512), 0), Mode::Train)
        .unwrap();
    assert_eq!(*out.logits.shape(), (2, 2));
}

#[test]
fn default_deepconvnet_shapes() {
    let cfg = DeepConvNetConfig::default();
    assert_eq!(cfg.lengths().unwrap(), vec![167, 52, 14, 1]);
    let dev = Cpu::default();
    let mut net = DeepConvNet::<f32, Cpu>::new(&dev, &cfg, 0).unwrap();
    let logits = net
        .forward(input(&dev, (2, 2, 512), 0), Mode::Eval)
        .unwrap();
    assert_eq!(*logits.shape(), (2, 2));
    // conv_time 10·25+25, conv_spat 2·25·25, BN 50, three blocks, dense 200·2+2.
    let blocks: usize = [(25, 50), (50, 100), (100, 200)]
        .iter()
        .map(|(i, o)| 10 * i * o + 2 * o)
        .sum();
    assert_eq!(net.num_trainable_params(), 275 + 1250 + 50 + blocks + 402);
}

#[test]
fn wrong_inputs_are_typed_errors() {
    let dev = Cpu::default();
    let mut student = Student::<f32, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let err = student
        .forward(input(&dev, (2, 3, 24), 1), Mode::Eval)
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Shape(_)), "{err}");
    assert!(err.to_string().contains("2×3×24"), "{err}");
    let err = student
        .forward(input(&dev, (2, 2, 25), 1), Mode::Eval)
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Shape(_)));
    let mut teacher = Teacher::<f32, Cpu>::new(&dev, &tiny_teacher(), 1).unwrap();
    let err = teacher
        .forward(
            input(&dev, (2, 3, 24), 1),
            input(&dev, (3, 2, 24), 1),
            Mode::Eval,
        )
        .err()
        .unwrap();
    assert!(err.to_string().contains("batch"), "{err}");
    let mut dcn = DeepConvNet::<f32, Cpu>::new(&dev, &tiny_deepconvnet(), 1).unwrap();
    assert!(dcn.forward(input(&dev, (2, 2, 63), 1), Mode::Eval).is_err());
}

#[test]
fn bad_configs_are_rejected() {
    let dev = Cpu::default();
    let mut cfg = tiny_student();
    cfg.branch.heads = 3;
    let err = Student::<f32, Cpu>::new(&dev, &cfg, 0).err().unwrap();
    assert!(err.to_string().contains("heads"), "{err}");
    let mut cfg = tiny_student();
    cfg.branch.kernel = 30;
    assert!(Student::<f32, Cpu>::new(&dev, &cfg, 0).is_err());
    let mut cfg = tiny_teacher();
    cfg.branch.layers = 1;
    assert!(Teacher::<f32, Cpu>::new(&dev, &cfg, 0).is_err());
    let mut cfg = tiny_deepconvnet();
    cfg.samples = 20;
    let err = DeepConvNet::<f32, Cpu>::new(&dev, &cfg, 0).err().unwrap();
    assert!(err.to_string().contains("too short"), "{err}");
    let mut cfg = tiny_student();
    cfg.classifier.dropout = 1.0;
    assert!(Student::<f32, Cpu>::new(&dev, &cfg, 0).is_err());
}

#[test]
fn configs_deserialise_with_defaults_and_reject_unknown_fields() {
    let cfg: TeacherConfig = serde_json::from_str(r#"{"branch": {"heads": 4}}"#).unwrap();
    assert_eq!(cfg.branch.heads, 4);
    assert_eq!(cfg.branch.dim, 64);
    assert_eq!(cfg.eeg_channels, 28);
    assert!(serde_json::from_str::<StudentConfig>(r#"{"branch": {"head": 4}}"#).is_err());
    let json = serde_json::to_string(&DeepConvNetConfig::default()).unwrap();
    assert_eq!(
        serde_json::from_str::<DeepConvNetConfig>(&json).unwrap(),
        DeepConvNetConfig::default()
    );
}
