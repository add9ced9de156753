/** The frameworks a report can map its evidence to; apart from the schema so help text needs no zod. */

/** Frameworks a report can map its evidence to (one data file each in src/report/frameworks). */
export const FRAMEWORK_IDS = ["iso27001", "soc2", "nist-800-53", "hipaa", "dora"] as const;
/** A framework id. */
export type FrameworkId = (typeof FRAMEWORK_IDS)[number];
