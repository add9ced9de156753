/** Drills of a good dump stopped at every boundary, in the local runtime (test/support/interrupt-suite.ts). */
import { interruptSuite } from "./support/interrupt-suite.js";

interruptSuite("local");
