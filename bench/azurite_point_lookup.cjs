// Benchmarks only (node --require): Azurite keeps tables in LokiJS and finds one entity by
// { PartitionKey, RowKey } with the PartitionKey index, then scans that whole partition for the
// RowKey, so each point read, insert or update costs O(entities in the partition). Azure Table
// Storage serves point operations by key. Asking LokiJS for the RowKey first (it is indexed too)
// makes Azurite's point operations logarithmic; what they answer is unchanged.
"use strict";
const path = require("path");
const loki = require(path.join(__dirname, "..", "node_modules", "lokijs"));

const findOne = loki.Collection.prototype.findOne;
loki.Collection.prototype.findOne = function (query) {
  if (query && typeof query === "object" && Object.keys(query).length === 2 && "PartitionKey" in query &&
      "RowKey" in query && typeof query.RowKey !== "object" && this.binaryIndices.RowKey) {
    return findOne.call(this, { RowKey: query.RowKey, PartitionKey: query.PartitionKey });
  }
  return findOne.call(this, query);
};
console.log("azurite_point_lookup: point operations look up the RowKey index first");
