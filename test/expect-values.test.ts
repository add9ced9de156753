/** An assertion compares with any value, spaces and non-ASCII included. */
import { describe, expect, it } from "vitest";
import { satisfies } from "../src/checks/assertions.js";
import { expectSchema } from "../src/config/common-schema.js";

describe("expect with spaces", () => {
  it.each([
    ["= café/Zürich", "café/Zürich"],
    ["= José Müller", "José Müller"],
    ["= 'two  spaces'", "two  spaces"],
  ])("accepts %s and compares the whole value", (expectation, value) => {
    expect(expectSchema.safeParse(expectation).success).toBe(true);
    expect(satisfies(value, expectation)).toBe(true);
    expect(satisfies(`${value}!`, expectation)).toBe(false);
  });
});
