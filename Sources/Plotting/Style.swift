import Foundation

/// An sRGB colour, each channel in 0…1.
public struct Color: Sendable, Equatable {
    public var red: Double, green: Double, blue: Double

    public init(red: Double, green: Double, blue: Double) {
        (self.red, self.green, self.blue) = (red, green, blue)
    }

    /// From 0xRRGGBB.
    public init(hex: UInt32) {
        self.init(red: Double(hex >> 16 & 0xFF) / 255, green: Double(hex >> 8 & 0xFF) / 255, blue: Double(hex & 0xFF) / 255)
    }

    /// The Okabe–Ito palette (Okabe & Ito 2008), told apart with every common colour-vision
    /// deficiency; ordered for white backgrounds (yellow, the faintest, last).
    public static let palette: [Color] = [0x0072B2, 0xD55E00, 0x009E73, 0xE69F00, 0xCC79A7, 0x56B4E9, 0x595959, 0xF0E442].map(Color.init(hex:))

    /// The palette's colour for series `index`, cycling.
    public static func palette(_ index: Int) -> Color { palette[((index % palette.count) + palette.count) % palette.count] }

    /// Relative luminance (0 black … 1 white), to choose text that stands out on a fill.
    var luminance: Double { 0.2126 * red + 0.7152 * green + 0.0722 * blue }

    func mixed(with other: Color, _ t: Double) -> Color {
        Color(red: red + (other.red - red) * t, green: green + (other.green - green) * t, blue: blue + (other.blue - blue) * t)
    }
}

/// How a heat map turns values into colours.
public enum ColorMap: Sendable {
    /// Dark purple → yellow (matplotlib's viridis): perceptually uniform, for magnitudes.
    case viridis
    /// Blue → white → red (ColorBrewer RdBu): for signed values around zero (correlations,
    /// differences); its range is made symmetric about zero.
    case diverging

    var anchors: [Color] {
        switch self {
        case .viridis: [0x440154, 0x472D7B, 0x3B528B, 0x2C728E, 0x21918C, 0x28AE80, 0x5EC962, 0xADDC30, 0xFDE725].map(Color.init(hex:))
        case .diverging: [0x2166AC, 0x4393C3, 0x92C5DE, 0xD1E5F0, 0xF7F7F7, 0xFDDBC7, 0xF4A582, 0xD6604D, 0xB2182B].map(Color.init(hex:))
        }
    }

    /// The colour at `t` in 0…1 (clamped), interpolated between the anchors.
    func color(_ t: Double) -> Color {
        let anchors = self.anchors, position = min(max(t.isFinite ? t : 0, 0), 1) * Double(anchors.count - 1)
        let low = min(Int(position), anchors.count - 2)
        return anchors[low].mixed(with: anchors[low + 1], position - Double(low))
    }
}

/// The house style: one sans-serif family, quiet axes and grid, ink that is not pure black.
enum Theme {
    static let fontFamily = "DejaVu Sans"
    static let title = Font(size: 15, bold: true)
    static let label = Font(size: 12.5)
    static let tick = Font(size: 11)
    static let legend = Font(size: 11.5)
    static let caption = Font(size: 10.5)

    static let background = Color(hex: 0xFFFFFF)
    static let ink = Color(hex: 0x262626)
    static let axis = Color(hex: 0x4D4D4D)
    static let grid = Color(hex: 0xE6E6E6)
    static let muted = Color(hex: 0x8C8C8C)
    static let missing = Color(hex: 0xD9D9D9)

    /// Space around the figure's content, in points.
    static let margin = 16.0
    static let tickLength = 4.0
    static let lineWidth = 1.8
    static let markerRadius = 3.6
}
