//! The typed request/response core: everything the composer needs from the
//! protocol, as plain JSON values, typed values read straight from protobuf
//! (`de`), and small helpers. `protobuf` holds the protocol's
//! `google.protobuf.Struct`, its fields a list rather than a `BTreeMap`.

pub mod de;
pub mod protobuf;
pub mod request;
pub mod response;
pub mod structs;

pub use request::Request;
pub use response::Response;
