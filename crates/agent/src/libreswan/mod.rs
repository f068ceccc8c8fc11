//! The Libreswan driver.

pub mod conf;
pub mod proposals;
pub mod status;
