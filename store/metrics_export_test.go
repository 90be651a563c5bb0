package store

// MetricCountsQuery is the statement MetricCounts runs, for its plan to be checked.
const MetricCountsQuery = metricCountsQuery
