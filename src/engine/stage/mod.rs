//! The named stages of a round, in the order they run: [`gradient`], [`sample`] the
//! trajectory, [`score`] its projected texts, ask the [`mentor`], [`select`] among its
//! candidates, [`restart`]. Each is a function over the run's state; a new proposal source is
//! one more stage here.

pub mod gradient;
pub mod mentor;
pub mod restart;
pub mod sample;
pub mod score;
pub mod select;
