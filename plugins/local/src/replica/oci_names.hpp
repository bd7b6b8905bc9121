// Replica sync is made of the SDK's OCI building blocks (storage, the upstream client, digests,
// results); inside registryd::local::replica they go by their short names.
#pragma once

#include <registryd/oci/client/registry_client.hpp>
#include <registryd/oci/digest.hpp>
#include <registryd/oci/result.hpp>
#include <registryd/oci/storage/repository_store.hpp>

namespace registryd::local::replica {

namespace storage = ::registryd::oci::storage;
namespace client = ::registryd::oci::client;
using ::registryd::oci::digest;
using ::registryd::oci::fail;
using ::registryd::oci::result;
using ::registryd::oci::status;

}  // namespace registryd::local::replica
