'use strict';
// The bench/node_pool.js job for piscina (a worker_threads pool).
const { job } = require('./node_job.js');

module.exports = (data) => job(data);
