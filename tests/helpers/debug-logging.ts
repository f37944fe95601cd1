// Imported first by tests that read the logs: the logger reads its level when its module loads.
process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
