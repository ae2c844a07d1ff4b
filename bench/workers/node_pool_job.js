'use strict';
// A job for bench/node_pool.js, served by this project's Node.js serve():
// the SHA-256 of the chunk's zlib deflate.
const path = require('node:path');
const { serve } = require(path.join(__dirname, '..', '..', 'interop', 'node', 'index.js'));
const { job } = require('./node_job.js');

serve(job);
