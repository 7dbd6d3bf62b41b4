//! Multi-head self-attention and the post-LN transformer encoder block.

pub mod encoder;
pub mod mha;

pub use encoder::EncoderBlock;
pub use mha::SelfAttention;
