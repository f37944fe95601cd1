// Imported first by tests that read the metrics: Powertools Metrics reads this when its module loads.
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
