//! Finite-difference checks of every kernel and custom composition, of whole
//! networks in both modes, and of the tape reaching every parameter.

use dfdx::prelude::*;

use super::*;
use crate::model::composed;
use crate::model::deepconvnet::{elu, max_pool_time, unfold_time};
use crate::model::device::{BnOutput, FrontOutput, FrontParams, NetDevice, T1, T2, T3};
use crate::model::score::softsign;
use crate::model::{
    DeepConvNet, Mode, NetOutput, ParamTree, ParamTreeExt, ParamVec, Student, Teacher,
};

type Tp = OwnedTape<f64, Cpu>;
type Getter = Box<dyn Fn(&Gradients<f64, Cpu>) -> Vec<f64>>;

/// A scalar loss on the tape and, for each checked input, how to read its gradient.
struct Case {
    loss: Tensor<(), f64, Cpu, Tp>,
    leaves: Vec<Getter>,
}

fn leaf<S: Shape>(t: &Tensor<S, f64, Cpu>) -> Getter {
    let t = t.clone();
    Box::new(move |g| g.get(&t).as_vec())
}

/// `Σ y ⊙ r` for a fixed pseudo-random `r`.
fn probe<S: Shape>(y: Tensor<S, f64, Cpu, Tp>, seed: u64) -> Tensor<(), f64, Cpu, Tp> {
    let shape = *y.shape();
    let r = y
        .device()
        .tensor_from_vec(noise(shape.num_elements(), seed), shape);
    (y * r).sum()
}

/// Compares the tape's gradients of inputs `which` with central differences.
fn check(name: &str, inputs: Vec<Vec<f64>>, which: &[usize], f: impl Fn(&[Vec<f64>]) -> Case) {
    let case = f(&inputs);
    let grads = case.loss.backward();
    let h = 1e-5;
    for (k, &w) in which.iter().enumerate() {
        let analytic = (case.leaves[k])(&grads);
        assert_eq!(analytic.len(), inputs[w].len(), "{name}: input {w}");
        for i in 0..inputs[w].len() {
            let mut p = inputs.clone();
            p[w][i] += h;
            let mut m = inputs.clone();
            m[w][i] -= h;
            let numeric = (f(&p).loss.array() - f(&m).loss.array()) / (2.0 * h);
            let err = (analytic[i] - numeric).abs();
            assert!(
                err <= 1e-6 * numeric.abs().max(1.0),
                "{name}: d/d input{w}[{i}] analytic {} numeric {numeric}",
                analytic[i]
            );
        }
    }
}

fn t1(dev: &Cpu, v: &[f64]) -> T1<f64, Cpu> {
    dev.tensor_from_vec(v.to_vec(), (v.len(),))
}

fn t2(dev: &Cpu, v: &[f64], s: (usize, usize)) -> T2<f64, Cpu> {
    dev.tensor_from_vec(v.to_vec(), s)
}

fn t3(dev: &Cpu, v: &[f64], s: (usize, usize, usize)) -> T3<f64, Cpu> {
    dev.tensor_from_vec(v.to_vec(), s)
}

type Linear = fn(
    T2<f64, Cpu, Tp>,
    &T2<f64, Cpu>,
    Option<&T1<f64, Cpu>>,
) -> Result<T2<f64, Cpu, Tp>, CpuError>;
type Conv = fn(
    T3<f64, Cpu, Tp>,
    &T2<f64, Cpu>,
    Option<&T1<f64, Cpu>>,
    usize,
) -> Result<T2<f64, Cpu, Tp>, CpuError>;
type BnTrain = fn(
    T3<f64, Cpu, Tp>,
    &T1<f64, Cpu>,
    &T1<f64, Cpu>,
    f64,
) -> Result<BnOutput<f64, Cpu, Tp>, CpuError>;
type BnEval = fn(
    T3<f64, Cpu, Tp>,
    &T1<f64, Cpu>,
    &T1<f64, Cpu>,
    &T1<f64, Cpu>,
    &T1<f64, Cpu>,
    f64,
) -> Result<T3<f64, Cpu, Tp>, CpuError>;
type Ln =
    fn(T2<f64, Cpu, Tp>, &T1<f64, Cpu>, &T1<f64, Cpu>, f64) -> Result<T2<f64, Cpu, Tp>, CpuError>;
type Attn = fn(T3<f64, Cpu, Tp>, usize, Option<f64>) -> Result<T3<f64, Cpu, Tp>, CpuError>;

/// Both implementations of each kernel: dfdx primitives and the device's own.
fn kernels() -> Vec<(&'static str, Linear, Conv, BnTrain, BnEval, Ln, Attn)> {
    vec![
        (
            "composed",
            composed::linear,
            composed::temporal_conv,
            composed::batch_norm_train,
            composed::batch_norm_eval,
            composed::layer_norm,
            |qkv, heads, dropout| {
                use dfdx::tensor::RandomU64;
                let seed = qkv.device().random_u64();
                composed::attention(qkv, heads, dropout.map(|p| (p, seed)))
            },
        ),
        (
            "cpu",
            <Cpu as NetDevice<f64>>::linear,
            <Cpu as NetDevice<f64>>::temporal_conv,
            <Cpu as NetDevice<f64>>::batch_norm_train,
            <Cpu as NetDevice<f64>>::batch_norm_eval,
            <Cpu as NetDevice<f64>>::layer_norm,
            <Cpu as NetDevice<f64>>::attention,
        ),
    ]
}

#[test]
fn linear_gradients() {
    let dev = Cpu::default();
    for (name, linear, ..) in kernels() {
        for bias in [true, false] {
            let inputs = vec![noise(12, 1), noise(15, 2), noise(5, 3)];
            check(
                &format!("{name} linear"),
                inputs,
                &[0, 1, 2][..if bias { 3 } else { 2 }],
                |v| {
                    let x = t2(&dev, &v[0], (4, 3));
                    let w = t2(&dev, &v[1], (3, 5));
                    let b = t1(&dev, &v[2]);
                    let y = linear(x.leaky_trace(), &w, bias.then_some(&b)).unwrap();
                    Case {
                        loss: probe(y, 9),
                        leaves: vec![leaf(&x), leaf(&w), leaf(&b)],
                    }
                },
            );
        }
    }
}

#[test]
fn temporal_conv_gradients_and_values() {
    let dev = Cpu::default();
    let (b, c, s, k, f, stride) = (2, 3, 20, 8, 4, 4);
    let l = (s - k) / stride + 1;
    let xv = noise(b * c * s, 1);
    let wv = noise(k * f, 2);
    let bv = noise(f, 3);
    for (name, _, conv, ..) in kernels() {
        // Values: out[(b, l, c), f] = Σ_j x[b, c, l·stride + j]·w[j, f] + bias[f].
        let y = conv(
            t3(&dev, &xv, (b, c, s)).leaky_trace(),
            &t2(&dev, &wv, (k, f)),
            Some(&t1(&dev, &bv)),
            stride,
        )
        .unwrap();
        assert_eq!(*y.shape(), (b * l * c, f));
        let yv = y.as_vec();
        for bi in 0..b {
            for li in 0..l {
                for ci in 0..c {
                    for fi in 0..f {
                        let want: f64 = bv[fi]
                            + (0..k)
                                .map(|j| xv[(bi * c + ci) * s + li * stride + j] * wv[j * f + fi])
                                .sum::<f64>();
                        let got = yv[((bi * l + li) * c + ci) * f + fi];
                        assert!((got - want).abs() < 1e-12, "{name}");
                    }
                }
            }
        }
        check(
            &format!("{name} temporal conv"),
            vec![xv.clone(), wv.clone(), bv.clone()],
            &[1, 2],
            |v| {
                let x = t3(&dev, &v[0], (b, c, s));
                let w = t2(&dev, &v[1], (k, f));
                let bias = t1(&dev, &v[2]);
                let y = conv(x.leaky_trace(), &w, Some(&bias), stride).unwrap();
                Case {
                    loss: probe(y, 9),
                    leaves: vec![leaf(&w), leaf(&bias)],
                }
            },
        );
    }
}

type Front =
    fn(T3<f64, Cpu, Tp>, &FrontParams<'_, f64, Cpu>) -> Result<FrontOutput<f64, Cpu, Tp>, CpuError>;

#[test]
fn conv_front_gradients_and_agreement() {
    let dev = Cpu::default();
    let (b, c, s, k, f, stride, dim) = (3, 3, 20, 8, 4, 4, 5);
    let fronts: [(&str, Front); 2] = [
        ("composed", composed::conv_front),
        ("cpu", <Cpu as NetDevice<f64>>::conv_front),
    ];
    let xv = noise(b * c * s, 1);
    let inputs = vec![
        noise(k * f, 2),
        noise(f, 3),
        noise(f, 4).iter().map(|v| v + 1.5).collect(),
        noise(f, 5),
        noise(c * f * dim, 6),
        noise(dim, 7),
    ];
    let mean = t1(&dev, &noise(f, 8));
    let var = t1(&dev, &[0.5, 1.0, 1.5, 2.0]);
    for eval in [false, true] {
        let run = |front: Front, v: &[Vec<f64>]| {
            let x = t3(&dev, &xv, (b, c, s));
            let ps: Vec<_> = (0..6)
                .map(|i| match i {
                    0 => TensorPair::M(t2(&dev, &v[0], (k, f))),
                    4 => TensorPair::M(t2(&dev, &v[4], (c * f, dim))),
                    _ => TensorPair::V(t1(&dev, &v[i])),
                })
                .collect();
            let p = FrontParams {
                temporal_w: ps[0].m(),
                temporal_b: Some(ps[1].v()),
                stride,
                gamma: ps[2].v(),
                beta: ps[3].v(),
                eps: 1e-5,
                running: eval.then_some((&mean, &var)),
                spatial_w: ps[4].m(),
                spatial_b: Some(ps[5].v()),
            };
            let (y, stats) = front(x.leaky_trace(), &p).unwrap();
            assert_eq!(stats.is_some(), !eval);
            assert_eq!(*y.shape(), (b, (s - k) / stride + 1, dim));
            Case {
                loss: probe(y, 9),
                leaves: ps.iter().map(|t| t.leaf()).collect(),
            }
        };
        let a = run(fronts[0].1, &inputs).loss.array();
        let bb = run(fronts[1].1, &inputs).loss.array();
        assert!((a - bb).abs() < 1e-10, "composed {a} vs cpu {bb}");
        for (name, front) in fronts {
            check(
                &format!("{name} conv front (eval: {eval})"),
                inputs.clone(),
                &[0, 1, 2, 3, 4, 5],
                |v| run(front, v),
            );
        }
    }
}

/// Pure inference (no tape, fixed statistics) takes a tiled path through the CPU
/// front end: it must give the taped path's values, over several tiles.
#[test]
fn conv_front_inference_tiles_agree() {
    let dev = Cpu::default();
    let (b, c, s, k, f, stride, dim) = (40, 3, 200, 8, 4, 4, 5);
    let x = t3(&dev, &noise(b * c * s, 1), (b, c, s));
    let wt = t2(&dev, &noise(k * f, 2), (k, f));
    let bt = t1(&dev, &noise(f, 3));
    let (g, be) = (t1(&dev, &noise(f, 4)), t1(&dev, &noise(f, 5)));
    let (mean, var) = (t1(&dev, &noise(f, 6)), t1(&dev, &[0.5, 1.0, 1.5, 2.0]));
    let ws = t2(&dev, &noise(c * f * dim, 7), (c * f, dim));
    let bs = t1(&dev, &noise(dim, 8));
    let p = FrontParams {
        temporal_w: &wt,
        temporal_b: Some(&bt),
        stride,
        gamma: &g,
        beta: &be,
        eps: 1e-5,
        running: Some((&mean, &var)),
        spatial_w: &ws,
        spatial_b: Some(&bs),
    };
    let taped = <Cpu as NetDevice<f64>>::conv_front(x.leaky_trace(), &p)
        .unwrap()
        .0
        .as_vec();
    let plain = <Cpu as NetDevice<f64>>::conv_front(x.clone(), &p)
        .unwrap()
        .0
        .as_vec();
    let composed = composed::conv_front(x, &p).unwrap().0.as_vec();
    assert!(max_abs_diff(&taped, &plain) < 1e-12);
    assert!(max_abs_diff(&composed, &plain) < 1e-12);
}

enum TensorPair {
    V(T1<f64, Cpu>),
    M(T2<f64, Cpu>),
}

impl TensorPair {
    fn v(&self) -> &T1<f64, Cpu> {
        match self {
            TensorPair::V(t) => t,
            TensorPair::M(_) => unreachable!("a vector parameter"),
        }
    }
    fn m(&self) -> &T2<f64, Cpu> {
        match self {
            TensorPair::M(t) => t,
            TensorPair::V(_) => unreachable!("a matrix parameter"),
        }
    }
    fn leaf(&self) -> Getter {
        match self {
            TensorPair::V(t) => leaf(t),
            TensorPair::M(t) => leaf(t),
        }
    }
}

#[test]
fn batch_norm_gradients_and_statistics() {
    let dev = Cpu::default();
    let (a, c, l) = (3, 4, 5);
    let xv: Vec<f64> = noise(a * c * l, 1).iter().map(|v| 2.0 * v + 0.5).collect();
    for (name, _, _, bn_train, bn_eval, ..) in kernels() {
        let (_, stats) = bn_train(
            t3(&dev, &xv, (a, c, l)).leaky_trace(),
            &t1(&dev, &[1.0; 4]),
            &t1(&dev, &[0.0; 4]),
            1e-5,
        )
        .unwrap();
        for ch in 0..c {
            let vals: Vec<f64> = (0..a)
                .flat_map(|i| (0..l).map(move |j| (i, j)))
                .map(|(i, j)| xv[(i * c + ch) * l + j])
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            assert!((stats.mean.as_vec()[ch] - mean).abs() < 1e-12, "{name}");
            assert!((stats.var.as_vec()[ch] - var).abs() < 1e-12, "{name}");
        }
        let inputs = vec![xv.clone(), noise(c, 2), noise(c, 3)];
        check(
            &format!("{name} batch norm (train)"),
            inputs.clone(),
            &[0, 1, 2],
            |v| {
                let x = t3(&dev, &v[0], (a, c, l));
                let g = t1(&dev, &v[1]);
                let be = t1(&dev, &v[2]);
                let (y, _) = bn_train(x.leaky_trace(), &g, &be, 1e-5).unwrap();
                Case {
                    loss: probe(y, 9),
                    leaves: vec![leaf(&x), leaf(&g), leaf(&be)],
                }
            },
        );
        let mean = t1(&dev, &noise(c, 4));
        let var = t1(&dev, &[0.5, 1.0, 1.5, 2.0]);
        check(
            &format!("{name} batch norm (eval)"),
            inputs,
            &[0, 1, 2],
            |v| {
                let x = t3(&dev, &v[0], (a, c, l));
                let g = t1(&dev, &v[1]);
                let be = t1(&dev, &v[2]);
                let y = bn_eval(x.leaky_trace(), &g, &be, &mean, &var, 1e-5).unwrap();
                Case {
                    loss: probe(y, 9),
                    leaves: vec![leaf(&x), leaf(&g), leaf(&be)],
                }
            },
        );
    }
}

#[test]
fn layer_norm_gradients() {
    let dev = Cpu::default();
    for (name, _, _, _, _, ln, _) in kernels() {
        let inputs = vec![noise(24, 1), noise(6, 2), noise(6, 3)];
        check(&format!("{name} layer norm"), inputs, &[0, 1, 2], |v| {
            let x = t2(&dev, &v[0], (4, 6));
            let g = t1(&dev, &v[1]);
            let b = t1(&dev, &v[2]);
            let y = ln(x.leaky_trace(), &g, &b, 1e-5).unwrap();
            Case {
                loss: probe(y, 9),
                leaves: vec![leaf(&x), leaf(&g), leaf(&b)],
            }
        });
    }
}

type AddLn = fn(
    T2<f64, Cpu, Tp>,
    &T2<f64, Cpu>,
    &T1<f64, Cpu>,
    &T1<f64, Cpu>,
    f64,
) -> Result<T2<f64, Cpu, Tp>, CpuError>;
type Gate = fn(T3<f64, Cpu, Tp>, &T3<f64, Cpu>) -> Result<T3<f64, Cpu, Tp>, CpuError>;

#[test]
fn residual_layer_norm_and_gate_gradients() {
    let dev = Cpu::default();
    let add_lns: [(&str, AddLn); 2] = [
        ("composed", composed::add_layer_norm),
        ("cpu", <Cpu as NetDevice<f64>>::add_layer_norm),
    ];
    let inputs = vec![noise(24, 1), noise(24, 2), noise(6, 3), noise(6, 4)];
    let mut outs = Vec::new();
    for (name, add_ln) in add_lns {
        let run = |v: &[Vec<f64>]| {
            let x = t2(&dev, &v[0], (4, 6));
            let r = t2(&dev, &v[1], (4, 6));
            let g = t1(&dev, &v[2]);
            let b = t1(&dev, &v[3]);
            let y = add_ln(x.leaky_trace(), &r, &g, &b, 1e-5).unwrap();
            Case {
                loss: probe(y, 9),
                leaves: vec![leaf(&x), leaf(&r), leaf(&g), leaf(&b)],
            }
        };
        outs.push(run(&inputs).loss.array());
        check(
            &format!("{name} residual layer norm"),
            inputs.clone(),
            &[0, 1, 2, 3],
            run,
        );
    }
    assert!((outs[0] - outs[1]).abs() < 1e-12);

    let gates: [(&str, Gate); 2] = [
        ("composed", composed::gate),
        ("cpu", <Cpu as NetDevice<f64>>::gate),
    ];
    let inputs = vec![
        noise(30, 5).iter().map(|v| v + 0.013).collect(),
        noise(30, 6),
    ];
    let mut outs = Vec::new();
    for (name, gate) in gates {
        let run = |v: &[Vec<f64>]| {
            let z = t3(&dev, &v[0], (2, 3, 5));
            let x = t3(&dev, &v[1], (2, 3, 5));
            Case {
                loss: probe(gate(z.leaky_trace(), &x).unwrap(), 9),
                leaves: vec![leaf(&z), leaf(&x)],
            }
        };
        outs.push(run(&inputs).loss.array());
        check(&format!("{name} gate"), inputs.clone(), &[0, 1], run);
    }
    assert!((outs[0] - outs[1]).abs() < 1e-12);
}

#[test]
fn attention_gradients_and_agreement() {
    let dev = Cpu::default();
    let (b, s, d, heads) = (2, 5, 8, 2);
    let qkv = noise(b * s * 3 * d, 1);
    let outs: Vec<Vec<f64>> = kernels()
        .into_iter()
        .map(|(.., attn)| {
            attn(t3(&dev, &qkv, (b, s, 3 * d)).leaky_trace(), heads, None)
                .unwrap()
                .as_vec()
        })
        .collect();
    assert!(max_abs_diff(&outs[0], &outs[1]) < 1e-12);
    for (name, .., attn) in kernels() {
        check(&format!("{name} attention"), vec![qkv.clone()], &[0], |v| {
            let x = t3(&dev, &v[0], (b, s, 3 * d));
            let y = attn(x.leaky_trace(), heads, None).unwrap();
            Case {
                loss: probe(y, 9),
                leaves: vec![leaf(&x)],
            }
        });
    }
}

#[test]
fn attention_dropout_is_inverted_and_train_only() {
    let dev = Cpu::seed_from_u64(3);
    let (b, s, d, heads) = (4, 6, 8, 2);
    let qkv = t3(&dev, &noise(b * s * 3 * d, 1), (b, s, 3 * d));
    for (name, .., attn) in kernels() {
        let plain = attn(qkv.clone().leaky_trace(), heads, None)
            .unwrap()
            .as_vec();
        let dropped = attn(qkv.clone().leaky_trace(), heads, Some(0.5))
            .unwrap()
            .as_vec();
        assert_ne!(plain, dropped, "{name}");
        // Averaged over many draws the output approaches the plain one.
        let n = 300;
        let mut mean = vec![0.0; plain.len()];
        for _ in 0..n {
            for (m, v) in mean.iter_mut().zip(
                attn(qkv.clone().leaky_trace(), heads, Some(0.5))
                    .unwrap()
                    .as_vec(),
            ) {
                *m += v / n as f64;
            }
        }
        assert!(
            max_abs_diff(&mean, &plain) < 0.15,
            "{name}: {}",
            max_abs_diff(&mean, &plain)
        );
    }
}

#[test]
fn dropout_kernels_mask_scale_and_gradient() {
    let dev = Cpu::seed_from_u64(5);
    let n = 20_000;
    let xv: Vec<f64> = noise(n, 1).iter().map(|v| v + 2.0).collect();
    type Dropout = fn(T1<f64, Cpu, Tp>, f64) -> Result<T1<f64, Cpu, Tp>, CpuError>;
    let kernels: [(&str, Dropout); 3] = [
        ("dfdx", |x, p| x.try_dropout(p)),
        ("composed", |x, p| composed::dropout(x, p, 17)),
        ("cpu", <Cpu as NetDevice<f64>>::dropout),
    ];
    for (name, drop) in kernels {
        let x = t1(&dev, &xv);
        let y = drop(x.leaky_trace(), 0.3).unwrap();
        let yv = y.as_vec();
        let zeros = yv.iter().filter(|v| **v == 0.0).count() as f64 / n as f64;
        assert!(
            (zeros - 0.3).abs() < 0.02,
            "{name}: dropped fraction {zeros}"
        );
        for (a, b) in xv.iter().zip(&yv) {
            assert!(
                *b == 0.0 || (b - a / 0.7).abs() < 1e-12,
                "{name}: kept values are scaled by 1/(1−p)"
            );
        }
        // The gradient uses the forward's mask: d(Σ r⊙y)/dx = r⊙mask/(1−p).
        let r = noise(n, 2);
        let grads = (y * t1(&dev, &r)).sum().backward();
        let g = grads.get(&x).as_vec();
        for i in 0..n {
            let want = if yv[i] == 0.0 { 0.0 } else { r[i] / 0.7 };
            assert!((g[i] - want).abs() < 1e-12, "{name}: gradient {i}");
        }
    }
    // Same device seed, same mask.
    let a = <Cpu as NetDevice<f64>>::dropout(t1(&Cpu::seed_from_u64(9), &xv).leaky_trace(), 0.5)
        .unwrap();
    let b = <Cpu as NetDevice<f64>>::dropout(t1(&Cpu::seed_from_u64(9), &xv).leaky_trace(), 0.5)
        .unwrap();
    assert_eq!(a.as_vec(), b.as_vec());
}

#[test]
fn fast_softmax_exp_is_accurate() {
    let mut worst = 0.0f64;
    for i in 0..=200_000 {
        let x = -90.0f32 + 90.0 * i as f32 / 200_000.0;
        let want = (x as f64).exp();
        let got = x.softmax_exp() as f64;
        if want > 1e-37 {
            worst = worst.max(((got - want) / want).abs());
        } else {
            assert!(got < 1e-36, "exp({x}) = {got}");
        }
    }
    assert!(worst < 4e-7, "worst relative error {worst}");
}

#[test]
fn custom_compositions_gradients() {
    let dev = Cpu::default();
    let shape = (2, 6, 3);
    // Keep values away from the kinks of |z|, min(x, 0) and ties of max.
    let xv: Vec<f64> = noise(36, 1)
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.01 * i as f64)
        .collect();
    check("softsign", vec![xv.clone()], &[0], |v| {
        let x = t3(&dev, &v[0], shape);
        Case {
            loss: probe(softsign(x.leaky_trace()).unwrap(), 9),
            leaves: vec![leaf(&x)],
        }
    });
    check("elu", vec![xv.clone()], &[0], |v| {
        let x = t3(&dev, &v[0], shape);
        Case {
            loss: probe(elu(x.leaky_trace()).unwrap(), 9),
            leaves: vec![leaf(&x)],
        }
    });
    check("max pool", vec![xv.clone()], &[0], |v| {
        let x = t3(&dev, &v[0], shape);
        Case {
            loss: probe(max_pool_time(x.leaky_trace(), 4).unwrap(), 9),
            leaves: vec![leaf(&x)],
        }
    });
    check("unfold in time", vec![xv], &[0], |v| {
        let x = t3(&dev, &v[0], shape);
        Case {
            loss: probe(unfold_time(x.leaky_trace(), 3).unwrap(), 9),
            leaves: vec![leaf(&x)],
        }
    });
}

/// Central differences of `loss(model)` along a few coordinates of every trainable
/// tensor, against the tape's gradient.
fn check_model<M: ParamTree<f64, Cpu> + Clone>(
    name: &str,
    model: &M,
    loss: impl Fn(&mut M, Option<Gradients<f64, Cpu>>) -> Tensor<(), f64, Cpu, Tp>,
) {
    let mut m = model.clone();
    let grads = loss(&mut m, Some(model.alloc_grads().unwrap())).backward();
    let mut grads = grads;
    let analytic = model.grad_vec(&mut grads).unwrap();
    let like = model.param_vec();
    let h = 1e-5;
    let mut offset = 0;
    for (part, g) in like.parts.iter().zip(&analytic.parts) {
        let n = part.shape().0;
        let gv = g.as_vec();
        for i in [0, n / 2, n - 1] {
            let mut unit = vec![0.0; like.len()];
            unit[offset + i] = 1.0;
            let unit = ParamVec::from_values(&like, &unit).unwrap();
            let at = |step: f64| {
                let mut m = model.clone();
                m.add_scaled(&unit, step).unwrap();
                loss(&mut m, None).array()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (gv[i] - numeric).abs() <= 1e-5 * numeric.abs().max(1.0),
                "{name}: coordinate {i} of tensor at offset {offset}: analytic {} numeric {numeric}",
                gv[i]
            );
        }
        offset += n;
    }
}

/// `Σ logits ⊙ r₁ + Σ feature ⊙ r₂ + Σ fusion ⊙ r₃`: reaches every output.
fn output_loss(out: NetOutput<f64, Cpu, Tp>) -> Tensor<(), f64, Cpu, Tp> {
    probe(out.logits, 1)
        + probe(out.feature.retaped::<Tp>(), 2)
        + probe(out.fusion.retaped::<Tp>(), 3)
}

#[test]
fn student_gradients_in_both_modes() {
    let dev = Cpu::seed_from_u64(0);
    let student = Student::<f64, Cpu>::new(&dev, &tiny_student(), 1).unwrap();
    let x = input::<f64>(&dev, (3, 2, 24), 7);
    for mode in [Mode::Train, Mode::Eval] {
        check_model(&format!("student {mode:?}"), &student, |m, g| {
            let x = match g {
                Some(g) => x.clone().traced(g),
                None => x.clone().leaky_traced(),
            };
            output_loss(m.forward(x, mode).unwrap())
        });
    }
}

#[test]
fn teacher_gradients_in_both_modes() {
    let dev = Cpu::seed_from_u64(0);
    let teacher = Teacher::<f64, Cpu>::new(&dev, &tiny_teacher(), 1).unwrap();
    let eeg = input::<f64>(&dev, (3, 3, 24), 7);
    let eog = input::<f64>(&dev, (3, 2, 24), 8);
    for mode in [Mode::Train, Mode::Eval] {
        check_model(&format!("teacher {mode:?}"), &teacher, |m, g| {
            let x = match g {
                Some(g) => eeg.clone().traced(g),
                None => eeg.clone().leaky_traced(),
            };
            output_loss(m.forward(x, eog.clone(), mode).unwrap())
        });
    }
}

#[test]
fn deepconvnet_gradients() {
    let dev = Cpu::seed_from_u64(0);
    let net = DeepConvNet::<f64, Cpu>::new(&dev, &tiny_deepconvnet(), 1).unwrap();
    let x = input::<f64>(&dev, (3, 2, 64), 7);
    for mode in [Mode::Train, Mode::Eval] {
        check_model(&format!("deepconvnet {mode:?}"), &net, |m, g| {
            let x = match g {
                Some(g) => x.clone().traced(g),
                None => x.clone().leaky_traced(),
            };
            probe(m.forward(x, mode).unwrap(), 1)
        });
    }
}

fn trainable_names<M: ParamTree<f32, Cpu>>(m: &M) -> Vec<String> {
    m.tensors()
        .into_iter()
        .filter(|t| t.trainable)
        .map(|t| t.name)
        .collect()
}

/// Asserts which trainable tensors got a non-zero gradient.
fn assert_reached(
    what: &str,
    names: &[String],
    g: &ParamVec<f32, Cpu>,
    reached: impl Fn(&str) -> bool,
) {
    assert_eq!(names.len(), g.parts.len());
    for (n, part) in names.iter().zip(&g.parts) {
        let nonzero = part.as_vec().iter().any(|v| *v != 0.0);
        assert_eq!(
            nonzero,
            reached(n),
            "{what}: gradient of {n} (non-zero: {nonzero})"
        );
    }
}

/// Every trainable tensor gets a non-zero gradient from a train-mode step with the
/// dropouts on — the tape is threaded through every branch of the graph.
#[test]
fn the_tape_reaches_every_parameter() {
    let dev = Cpu::seed_from_u64(0);
    let mut scfg = tiny_student();
    scfg.branch = BranchConfig {
        front_dropout: 0.3,
        dropout: 0.1,
        attn_dropout: 0.1,
        ..tiny_branch()
    };
    scfg.classifier.dropout = 0.5;

    let mut student = Student::<f32, Cpu>::new(&dev, &scfg, 1).unwrap();
    let names = trainable_names(&student);
    let x = input::<f32>(&dev, (4, 2, 24), 7);
    let y = one_hot::<f32>(&dev, &[0, 1, 1, 0], 2);
    let out = student
        .forward(x.trace(student.alloc_grads().unwrap()), Mode::Train)
        .unwrap();
    let mut grads = cross_entropy_with_logits_loss(out.logits, y.clone()).backward();
    assert_reached(
        "student CE",
        &names,
        &student.grad_vec(&mut grads).unwrap(),
        |_| true,
    );

    // The feature alone reaches the branch and the fusion, not the classifier
    // (distillation's feature term).
    let out = student
        .forward(x.trace(student.alloc_grads().unwrap()), Mode::Train)
        .unwrap();
    let feature_loss = out.feature.retaped::<OwnedTape<f32, Cpu>>().square().mean();
    let mut grads = (out.logits.sum() * 0.0 + feature_loss).backward();
    assert_reached(
        "student feature",
        &names,
        &student.grad_vec(&mut grads).unwrap(),
        |n| !n.starts_with("classifier"),
    );

    let mut tcfg = tiny_teacher();
    tcfg.branch = scfg.branch.clone();
    tcfg.classifier.dropout = 0.5;
    let mut teacher = Teacher::<f32, Cpu>::new(&dev, &tcfg, 1).unwrap();
    let names = trainable_names(&teacher);
    let eeg = input::<f32>(&dev, (4, 3, 24), 8);
    let out = teacher
        .forward(
            eeg.trace(teacher.alloc_grads().unwrap()),
            x.clone(),
            Mode::Train,
        )
        .unwrap();
    let mut grads = cross_entropy_with_logits_loss(out.logits, y.clone()).backward();
    assert_reached(
        "teacher CE",
        &names,
        &teacher.grad_vec(&mut grads).unwrap(),
        |_| true,
    );

    let mut dcfg = tiny_deepconvnet();
    dcfg.dropout = 0.5;
    let mut net = DeepConvNet::<f32, Cpu>::new(&dev, &dcfg, 1).unwrap();
    let names = trainable_names(&net);
    let xd = input::<f32>(&dev, (4, 2, 64), 9);
    let logits = net
        .forward(xd.trace(net.alloc_grads().unwrap()), Mode::Train)
        .unwrap();
    let mut grads = cross_entropy_with_logits_loss(logits, y).backward();
    assert_reached(
        "deepconvnet",
        &names,
        &net.grad_vec(&mut grads).unwrap(),
        |_| true,
    );
}

#[test]
fn composed_and_fused_dropout_draw_the_same_masks() {
    use dfdx::tensor::RandomU64;
    let xv: Vec<f64> = noise(4 * 3 * 5 * 5, 1);
    // Plain dropout: the fused kernel draws its seed from the device RNG.
    let fused = {
        let dev = Cpu::seed_from_u64(8);
        <Cpu as NetDevice<f64>>::dropout(t1(&dev, &xv), 0.4)
            .unwrap()
            .as_vec()
    };
    let seed = Cpu::seed_from_u64(8).random_u64();
    let composed = composed::dropout(t1(&Cpu::default(), &xv), 0.4, seed)
        .unwrap()
        .as_vec();
    assert_eq!(fused, composed);
    // Attention-weight dropout over (B, heads, s, s) = (4, 3, 5, 5): s = 5 pads to 8
    // in the fused kernel, the composed one hashes the padded index too.
    let qkv: Vec<f64> = noise(4 * 5 * 3 * 6, 2);
    let run = |composed: bool| {
        let dev = Cpu::seed_from_u64(9);
        let x = dev.tensor_from_vec(qkv.clone(), (4, 5, 18));
        if composed {
            let seed = dev.random_u64();
            composed::attention(x, 3, Some((0.4, seed)))
                .unwrap()
                .as_vec()
        } else {
            <Cpu as NetDevice<f64>>::attention(x, 3, Some(0.4))
                .unwrap()
                .as_vec()
        }
    };
    let (a, b) = (run(false), run(true));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-12, "attention with dropout: {x} vs {y}");
    }
}
