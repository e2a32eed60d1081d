//! One integration-test binary: each module runs the real `ses-report` against real MySQL and
//! MongoDB servers, each test in databases of its own.

mod notifications;
mod util;

mod accounting;
mod architecture;
mod bad_input;
mod cli;
mod deliverability;
mod faults;
mod files;
mod maintenance;
mod managed;
mod migrations;
mod ops;
mod packaging;
mod partitions;
mod portability;
mod privacy;
mod properties;
mod reports;
mod scenarios;
mod servers;
mod users;
mod windows;
