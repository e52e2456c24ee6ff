import Foundation

/// Figures of a survival model's risk scores against observed times and events.
public enum SurvivalMetrics {
    /// Harrell's concordance index: over the comparable pairs (i had an event and a shorter time
    /// than j), the fraction where i's risk is higher; tied risks count one half. 0.5 is chance,
    /// 1 a perfect ranking; NaN when no pair is comparable. O(n²), for evaluation-sized sets.
    public static func concordanceIndex(risk: [Double], times: [Double], events: [Bool]) -> Double {
        var concordant = 0.0, comparable = 0.0
        for i in risk.indices where events[i] {
            for j in risk.indices where times[i] < times[j] {
                comparable += 1
                concordant += risk[i] > risk[j] ? 1 : risk[i] == risk[j] ? 0.5 : 0
            }
        }
        return comparable > 0 ? concordant / comparable : .nan
    }
}
