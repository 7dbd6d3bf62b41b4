//! Walking a network's tensors: counting, gradients, θ ± ε·v, copies, norms.
//!
//! dfdx 0.13's `TensorCollection` cannot describe tensors whose shape is only known
//! at run time (its `TensorOptions` needs a `ConstShape`), and every size here is a
//! configuration value. So the networks implement this small [`ParamTree`] trait
//! instead: a visit, in a fixed order, of every tensor with a dotted name and a
//! trainable flag (batch-norm running statistics are not trainable). Everything else
//! — [`ParamTreeExt`], [`ParamVec`], [`super::Adam`], [`super::checkpoint`] — is built on it.

use dfdx::prelude::*;

use super::device::{Float, NetDevice, T1, T2};
use super::error::ModelError;

/// A borrowed parameter tensor of either rank.
pub enum TensorRef<'a, E, D: Storage<E>> {
    Vector(&'a T1<E, D>),
    Matrix(&'a T2<E, D>),
}

/// A mutably borrowed parameter tensor of either rank.
pub enum TensorMut<'a, E, D: Storage<E>> {
    Vector(&'a mut T1<E, D>),
    Matrix(&'a mut T2<E, D>),
}

impl<E: Float, D: NetDevice<E>> TensorRef<'_, E, D> {
    /// The dims as a `Vec` (checkpoint shapes, error messages).
    pub fn dims(&self) -> Vec<usize> {
        match self {
            TensorRef::Vector(t) => vec![t.shape().0],
            TensorRef::Matrix(t) => vec![t.shape().0, t.shape().1],
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// The values in row-major order (copied to the host).
    pub fn to_vec(&self) -> Vec<E> {
        match self {
            TensorRef::Vector(t) => t.as_vec(),
            TensorRef::Matrix(t) => t.as_vec(),
        }
    }

    /// A flat copy-on-write view (no data copy, new id) of the tensor.
    pub fn flat(&self) -> T1<E, D> {
        let n = self.numel();
        match self {
            TensorRef::Vector(t) => (*t).clone(),
            TensorRef::Matrix(t) => (*t).clone().reshape_like(&(n,)),
        }
    }
}

impl<E: Float, D: NetDevice<E>> TensorMut<'_, E, D> {
    /// The dims as a `Vec`.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            TensorMut::Vector(t) => vec![t.shape().0],
            TensorMut::Matrix(t) => vec![t.shape().0, t.shape().1],
        }
    }

    /// Overwrites the values (row-major); the length must match.
    pub fn copy_from_slice(&mut self, src: &[E]) {
        match self {
            TensorMut::Vector(t) => t.copy_from(src),
            TensorMut::Matrix(t) => t.copy_from(src),
        }
    }
}

/// Builds the dotted names (`eeg.blocks.0.attn.qkv.weight`) during a visit.
#[derive(Default)]
pub struct ParamPath {
    parts: Vec<String>,
}

impl ParamPath {
    pub fn enter(&mut self, part: impl Into<String>) {
        self.parts.push(part.into());
    }
    pub fn leave(&mut self) {
        self.parts.pop();
    }
    pub fn name(&self) -> String {
        self.parts.join(".")
    }
}

/// A visit callback: dotted name, trainable flag, tensor.
pub(crate) type VisitFn<'f, 'a, E, D> = dyn FnMut(&str, bool, TensorRef<'a, E, D>) + 'f;
/// A mutable visit callback.
pub(crate) type VisitMutFn<'f, 'a, E, D> = dyn FnMut(&str, bool, TensorMut<'a, E, D>) + 'f;

/// Something made of named parameter tensors, visited in a fixed order.
///
/// Implement it with [`impl_params!`](crate::impl_params) for structs; it is implemented
/// for rank-1/2 tensors (trainable leaves), [`Buffer`] (non-trainable leaves),
/// `Vec<M>`, `Option<M>` and pairs `(A, B)` (e.g. a student and its regressor, trained
/// by one optimizer).
pub trait ParamTree<E: Float, D: NetDevice<E>> {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>);
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>);
}

/// A tensor that is saved and copied with the model but never trained (batch-norm
/// running statistics).
#[derive(Clone, Debug)]
pub struct Buffer<E, D: Storage<E>>(pub T1<E, D>);

impl<E: Float, D: NetDevice<E>> ParamTree<E, D> for T1<E, D> {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>) {
        f(&path.name(), true, TensorRef::Vector(self));
    }
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>) {
        f(&path.name(), true, TensorMut::Vector(self));
    }
}

impl<E: Float, D: NetDevice<E>> ParamTree<E, D> for T2<E, D> {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>) {
        f(&path.name(), true, TensorRef::Matrix(self));
    }
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>) {
        f(&path.name(), true, TensorMut::Matrix(self));
    }
}

impl<E: Float, D: NetDevice<E>> ParamTree<E, D> for Buffer<E, D> {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>) {
        f(&path.name(), false, TensorRef::Vector(&self.0));
    }
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>) {
        f(&path.name(), false, TensorMut::Vector(&mut self.0));
    }
}

impl<E: Float, D: NetDevice<E>, M: ParamTree<E, D>> ParamTree<E, D> for Vec<M> {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>) {
        for (i, m) in self.iter().enumerate() {
            path.enter(i.to_string());
            m.visit(path, f);
            path.leave();
        }
    }
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>) {
        for (i, m) in self.iter_mut().enumerate() {
            path.enter(i.to_string());
            m.visit_mut(path, f);
            path.leave();
        }
    }
}

impl<E: Float, D: NetDevice<E>, M: ParamTree<E, D>> ParamTree<E, D> for Option<M> {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>) {
        if let Some(m) = self {
            m.visit(path, f);
        }
    }
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>) {
        if let Some(m) = self {
            m.visit_mut(path, f);
        }
    }
}

impl<E: Float, D: NetDevice<E>, A: ParamTree<E, D>, B: ParamTree<E, D>> ParamTree<E, D> for (A, B) {
    fn visit<'a>(&'a self, path: &mut ParamPath, f: &mut VisitFn<'_, 'a, E, D>) {
        path.enter("0");
        self.0.visit(path, f);
        path.leave();
        path.enter("1");
        self.1.visit(path, f);
        path.leave();
    }
    fn visit_mut<'a>(&'a mut self, path: &mut ParamPath, f: &mut VisitMutFn<'_, 'a, E, D>) {
        path.enter("0");
        self.0.visit_mut(path, f);
        path.leave();
        path.enter("1");
        self.1.visit_mut(path, f);
        path.leave();
    }
}

/// Implements [`ParamTree`] for a struct `Name<E, D>` by visiting the listed fields in
/// order, each under its field name.
#[macro_export]
macro_rules! impl_params {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl<E: $crate::model::Float, D: $crate::model::NetDevice<E>>
            $crate::model::ParamTree<E, D> for $ty<E, D>
        {
            fn visit<'a>(
                &'a self,
                path: &mut $crate::model::ParamPath,
                f: &mut $crate::model::param_tree::VisitFn<'_, 'a, E, D>,
            ) {
                $(
                    path.enter(stringify!($field));
                    $crate::model::ParamTree::visit(&self.$field, path, f);
                    path.leave();
                )*
            }
            fn visit_mut<'a>(
                &'a mut self,
                path: &mut $crate::model::ParamPath,
                f: &mut $crate::model::param_tree::VisitMutFn<'_, 'a, E, D>,
            ) {
                $(
                    path.enter(stringify!($field));
                    $crate::model::ParamTree::visit_mut(&mut self.$field, path, f);
                    path.leave();
                )*
            }
        }
    };
}

/// A named tensor collected by [`ParamTreeExt::tensors`].
pub struct Named<'a, E, D: Storage<E>> {
    pub name: String,
    pub trainable: bool,
    pub tensor: TensorRef<'a, E, D>,
}

/// Operations on any [`ParamTree`].
pub trait ParamTreeExt<E: Float, D: NetDevice<E>>: ParamTree<E, D> {
    /// Every tensor, in visit order.
    fn tensors(&self) -> Vec<Named<'_, E, D>> {
        let mut out = Vec::new();
        self.visit(&mut ParamPath::default(), &mut |name, trainable, tensor| {
            out.push(Named {
                name: name.to_string(),
                trainable,
                tensor,
            })
        });
        out
    }

    /// Number of trainable scalars.
    fn num_trainable_params(&self) -> usize {
        self.tensors()
            .iter()
            .filter(|t| t.trainable)
            .map(|t| t.tensor.numel())
            .sum()
    }

    /// A gradient store with a zeroed slot for every trainable tensor, to start a
    /// tape: `x.traced(model.alloc_grads()?)`. It is "leaky" (dfdx 0.13 offers no
    /// public way to name the leaf tensors of a runtime-sized model): intermediate
    /// gradients stay in it until it is dropped, which does not raise the peak
    /// memory of a step (dfdx frees them only after the backward pass anyway).
    fn alloc_grads(&self) -> Result<Gradients<E, D>, ModelError> {
        let mut grads = Gradients::leaky();
        for t in self.tensors().into_iter().filter(|t| t.trainable) {
            match t.tensor {
                TensorRef::Vector(x) => grads.try_alloc_for(x),
                TensorRef::Matrix(x) => grads.try_alloc_for(x),
            }
            .map_err(ModelError::device)?;
        }
        Ok(grads)
    }

    /// The trainable parameters as a vector (shares storage, copy-on-write).
    fn param_vec(&self) -> ParamVec<E, D> {
        ParamVec {
            parts: self
                .tensors()
                .iter()
                .filter(|t| t.trainable)
                .map(|t| t.tensor.flat())
                .collect(),
        }
    }

    /// The gradients of this model's trainable parameters found in `grads` (zero for a
    /// parameter the loss did not reach), as a vector in visit order.
    fn grad_vec(&self, grads: &mut Gradients<E, D>) -> Result<ParamVec<E, D>, ModelError> {
        let mut parts = Vec::new();
        for t in self.tensors().into_iter().filter(|t| t.trainable) {
            let n = t.tensor.numel();
            let g = match t.tensor {
                TensorRef::Vector(x) => {
                    grads.try_alloc_for(x).map_err(ModelError::device)?;
                    grads.get(x)
                }
                TensorRef::Matrix(x) => {
                    grads.try_alloc_for(x).map_err(ModelError::device)?;
                    grads.get(x).reshape_like(&(n,))
                }
            };
            parts.push(g);
        }
        Ok(ParamVec { parts })
    }

    /// A gradient store holding `v` as the gradient of this model's trainable
    /// tensors (e.g. a cross-entropy gradient plus a meta-gradient, for
    /// [`super::Adam::step`]). Built on any device as the gradient of the linear form
    /// `Σ ⟨θᵢ, vᵢ⟩`, which is exactly `v`.
    fn grads_from_vec(&self, v: &ParamVec<E, D>) -> Result<Gradients<E, D>, ModelError> {
        let trainable: Vec<Named<'_, E, D>> =
            self.tensors().into_iter().filter(|t| t.trainable).collect();
        if trainable.len() != v.parts.len() {
            return Err(ModelError::Params(format!(
                "vector has {} parts, the model {} trainable tensors",
                v.parts.len(),
                trainable.len()
            )));
        }
        let mut total: Option<Tensor<(), E, D, OwnedTape<E, D>>> = None;
        for (t, part) in trainable.iter().zip(&v.parts) {
            let n = t.tensor.numel();
            if n != part.shape().0 {
                return Err(ModelError::Params(format!(
                    "{}: {} values, the vector part has {}",
                    t.name,
                    n,
                    part.shape().0
                )));
            }
            let taped = match t.tensor {
                TensorRef::Vector(x) => x.retaped::<OwnedTape<E, D>>(),
                TensorRef::Matrix(x) => x
                    .retaped::<OwnedTape<E, D>>()
                    .try_reshape_like(&(n,))
                    .map_err(ModelError::device)?,
            };
            let term = taped
                .try_mul(part.clone())
                .and_then(|p| p.try_sum::<(), _>())
                .map_err(ModelError::device)?;
            total = Some(match total {
                Some(acc) => acc.try_add(term).map_err(ModelError::device)?,
                None => term,
            });
        }
        match total {
            Some(t) => t.try_backward().map_err(ModelError::device),
            None => Ok(Gradients::leaky()),
        }
    }

    /// θ ← θ + α·v over the trainable parameters, in place (ids are kept, so the model
    /// stays usable with an optimizer). The `v` layout must be this model's.
    fn add_scaled(&mut self, v: &ParamVec<E, D>, alpha: f64) -> Result<(), ModelError> {
        let mut i = 0;
        let mut err = None;
        self.visit_mut(&mut ParamPath::default(), &mut |name, trainable, t| {
            if !trainable || err.is_some() {
                return;
            }
            let Some(part) = v.parts.get(i) else {
                err = Some(format!(
                    "vector has {} parts, model has more",
                    v.parts.len()
                ));
                return;
            };
            i += 1;
            let r = match t {
                TensorMut::Vector(x) => {
                    if x.shape().0 != part.shape().0 {
                        err = Some(format!(
                            "{name}: length {} vs {}",
                            x.shape().0,
                            part.shape().0
                        ));
                        return;
                    }
                    x.try_axpy(1.0, part, alpha)
                }
                TensorMut::Matrix(x) => {
                    let shape = *x.shape();
                    if shape.0 * shape.1 != part.shape().0 {
                        err = Some(format!("{name}: {shape:?} vs length {}", part.shape().0));
                        return;
                    }
                    x.try_axpy(1.0, &part.clone().reshape_like(&shape), alpha)
                }
            };
            if let Err(e) = r {
                err = Some(format!("{e:?}"));
            }
        });
        if let Some(e) = err {
            return Err(ModelError::Params(e));
        }
        if i != v.parts.len() {
            return Err(ModelError::Params(format!(
                "vector has {} parts, model has {i}",
                v.parts.len()
            )));
        }
        Ok(())
    }

    /// A copy whose tensors have fresh ids (a clone shares ids with the original, so
    /// gradients of both would land in the same slots of one `Gradients`). Use this
    /// for the student copy of the feedback phase.
    fn deep_copy(&self) -> Result<Self, ModelError>
    where
        Self: Clone + Sized,
    {
        let mut copy = self.clone();
        let mut err = None;
        copy.visit_mut(&mut ParamPath::default(), &mut |_, _, t| {
            let r = match t {
                TensorMut::Vector(x) => x.clone().try_add(E::zero()).map(|n| *x = n),
                TensorMut::Matrix(x) => x.clone().try_add(E::zero()).map(|n| *x = n),
            };
            if let Err(e) = r {
                err = Some(ModelError::device(e));
            }
        });
        match err {
            Some(e) => Err(e),
            None => Ok(copy),
        }
    }

    /// Copies every tensor's values (trainable and buffers) from `other`, which must
    /// have the same names and shapes. Ids of `self` are kept.
    fn copy_values_from(&mut self, other: &Self) -> Result<(), ModelError> {
        let src = other.tensors();
        let mut i = 0;
        let mut err = None;
        self.visit_mut(&mut ParamPath::default(), &mut |name, _, mut t| {
            if err.is_some() {
                return;
            }
            match src.get(i) {
                Some(s) if s.name == name && s.tensor.dims() == t.dims() => {
                    t.copy_from_slice(&s.tensor.to_vec())
                }
                _ => err = Some(format!("tensor {i} ({name}) differs between the models")),
            }
            i += 1;
        });
        match err {
            Some(e) => Err(ModelError::Params(e)),
            None if i != src.len() => {
                Err(ModelError::Params(format!("{} tensors vs {i}", src.len())))
            }
            None => Ok(()),
        }
    }
}

impl<E: Float, D: NetDevice<E>, M: ParamTree<E, D> + ?Sized> ParamTreeExt<E, D> for M {}

/// A flat vector over a model's trainable parameters (one rank-1 tensor per
/// parameter, in visit order): gradients, Hessian-vector products, parameter
/// snapshots. Arithmetic allocates new tensors and never touches a model.
#[derive(Clone, Debug)]
pub struct ParamVec<E, D: Storage<E>> {
    pub parts: Vec<T1<E, D>>,
}

impl<E: Float, D: NetDevice<E>> ParamVec<E, D> {
    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.shape().0).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self, other: &Self) -> Result<(), ModelError> {
        let a: Vec<usize> = self.parts.iter().map(|p| p.shape().0).collect();
        let b: Vec<usize> = other.parts.iter().map(|p| p.shape().0).collect();
        if a != b {
            return Err(ModelError::Params(format!(
                "parameter vectors differ in layout ({} vs {} parts, {} vs {} scalars)",
                a.len(),
                b.len(),
                self.len(),
                other.len()
            )));
        }
        Ok(())
    }

    /// ⟨self, other⟩ (accumulated in f64).
    pub fn dot(&self, other: &Self) -> Result<f64, ModelError> {
        self.check(other)?;
        let mut acc = 0.0;
        for (a, b) in self.parts.iter().zip(&other.parts) {
            let s = a
                .clone()
                .try_mul(b.clone())
                .and_then(|p| p.try_sum::<(), _>())
                .map_err(ModelError::device)?;
            acc += s
                .as_vec()
                .first()
                .and_then(|v| v.to_f64())
                .unwrap_or(f64::NAN);
        }
        Ok(acc)
    }

    /// Euclidean norm.
    pub fn norm(&self) -> Result<f64, ModelError> {
        Ok(self.dot(self)?.sqrt())
    }

    /// α·self.
    pub fn scale(&self, alpha: f64) -> Result<Self, ModelError> {
        let parts = self
            .parts
            .iter()
            .map(|p| p.clone().try_mul(E::c(alpha)))
            .collect::<Result<_, _>>()
            .map_err(ModelError::device)?;
        Ok(ParamVec { parts })
    }

    /// self + α·other.
    pub fn add_scaled(&self, other: &Self, alpha: f64) -> Result<Self, ModelError> {
        self.check(other)?;
        let mut parts = Vec::with_capacity(self.parts.len());
        for (a, b) in self.parts.iter().zip(&other.parts) {
            let mut a = a.clone();
            a.try_axpy(1.0, b, alpha).map_err(ModelError::device)?;
            parts.push(a);
        }
        Ok(ParamVec { parts })
    }

    /// A vector with `like`'s layout holding `values` (concatenated, host side).
    pub fn from_values(like: &Self, values: &[E]) -> Result<Self, ModelError> {
        if values.len() != like.len() {
            return Err(ModelError::Params(format!(
                "{} values for a vector of {}",
                values.len(),
                like.len()
            )));
        }
        let mut parts = Vec::with_capacity(like.parts.len());
        let mut rest = values;
        for p in &like.parts {
            let n = p.shape().0;
            let (head, tail) = rest.split_at(n);
            rest = tail;
            parts.push(
                p.device()
                    .try_tensor_from_vec(head.to_vec(), (n,))
                    .map_err(ModelError::device)?,
            );
        }
        Ok(ParamVec { parts })
    }

    /// All values, concatenated (host copy).
    pub fn to_vec(&self) -> Vec<E> {
        self.parts.iter().flat_map(|p| p.as_vec()).collect()
    }
}
