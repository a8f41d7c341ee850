//! Terraform provider `gatehouse`.
//!
//! Planned: a provider binary speaking the Terraform plugin protocol, managing tenants,
//! organizations, connections and keys through `gatehouse-sdk`. Nothing is implemented yet.
