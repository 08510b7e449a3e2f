// Arithmetic on the counts a profile holds (calls, errors, nanoseconds, stack counts). A profile is
// input that anyone could have edited, so each count can be anything from 0 to Int64.max (the
// largest integer the JSON reader accepts), and nothing relates one count to another: a file may
// say 2 errors among 1 checked call, or a billion calls in 1 ns. Swift's `+` and `UInt64(Double)`
// trap on overflow (and `UInt64(Double)` on NaN, on negatives and on 2^64, which is what
// Double(UInt64.max) rounds to), and `&+` wraps to a small, wrong total. So every sum of counts in
// the analysis saturates at UInt64.max, and every count computed through a Double is converted
// with `UInt64(saturating:)`. A saturated total is printed as 18446744073709551615: absurd, as
// the input was, but the report, the folded stacks, the SVG and the plan are still produced.

extension UInt64 {
    /// The count nearest to `value`: 0 for NaN and for anything not positive, UInt64.max for
    /// anything from 2^64 up (infinity included); otherwise truncated, as UInt64(Double) is.
    public init(saturating value: Double) {
        if value.isNaN || value <= 0 {
            self = 0
        } else if value >= 0x1p64 {
            self = .max
        } else {
            self = UInt64(value)
        }
    }

    /// `self + other`, or UInt64.max if that does not fit.
    public func addingSaturated(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    public mutating func addSaturated(_ other: UInt64) {
        self = addingSaturated(other)
    }
}

extension Sequence {
    /// The sum of `value` over the elements, saturating at UInt64.max.
    public func saturatingSum(_ value: (Element) -> UInt64) -> UInt64 {
        reduce(UInt64(0)) { $0.addingSaturated(value($1)) }
    }
}
