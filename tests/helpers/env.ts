// Jest setupFiles: the function's environment, set before any module (and so lib/config) loads.
process.env.COMPLETION_QUEUE_URL ??= 'https://sqs.us-east-1.amazonaws.com/123456789012/api-key-provisioner-test-completions';
process.env.NAME_PREFIX ??= 'keyprov/test/';
process.env.DEFAULT_TAGS ??= '{"managed-by":"api-key-provisioner","stage":"test"}';
// No limiter by default: it is shared by every invocation of a module, so one test's throttle would pace the next ones.
process.env.API_GATEWAY_RATE_PER_SECOND ??= '0';
process.env.RETRY_BASE_DELAY_MS ??= '1';
process.env.RETRY_MAX_DELAY_MS ??= '20';
process.env.DEADLINE_SAFETY_MARGIN_MS ??= '1000';
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
// EMF metric lines would flood the test output; tests of metrics import helpers/metrics-enabled first.
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.KEY_RECORDS_TABLE ??= 'keyprov-test-key-records';
