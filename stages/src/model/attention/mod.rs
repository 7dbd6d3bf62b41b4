//! Multi-head self-attention and the post-LN transformer encoder block.

pub(crate) mod encoder;
pub(crate) mod mha;

pub(crate) use encoder::EncoderBlock;
