'use strict';
// The bench/node_pool.js job for workerpool (threads or child processes).
const path = require('node:path');
const { createRequire } = require('node:module');

const workerpool = createRequire(path.join(__dirname, '..', '..', 'interop', 'package.json'))('workerpool');
const { job } = require('./node_job.js');

workerpool.worker({ job: (data) => job(data) });
