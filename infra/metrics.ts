/**
 * The metrics contract of DESIGN.md as the stack sees it: the handlers emit EMF into this
 * namespace (Powertools reads it from POWERTOOLS_METRICS_NAMESPACE) with these dimensions.
 */
export const METRIC_NAMESPACE = 'Maas';

/** Per-request metrics carry both; alarms and charts get one series per model and variant. */
export const METRIC_DIMENSIONS = ['Model', 'Variant'] as const;
