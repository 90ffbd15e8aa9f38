//! The named stages of a round, in the order they run: [`gradient`], [`sample`] the
//! trajectory, [`score`] its projected texts, ask the [`mentor`], then either [`select`] among
//! its candidates as raw texts or gather the [`arms`] of a [`probe`] (optionally
//! [`screen`]ed first) that judges them as starting points, and [`restart`]. Each is a function over the run's state; a new proposal
//! source is one more arm source here.

pub mod arms;
pub mod gradient;
pub mod mentor;
pub mod probe;
pub mod restart;
pub mod sample;
pub mod score;
pub mod screen;
pub mod select;
