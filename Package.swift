// swift-tools-version:6.1
// Transcriptile: data-parallel training of RNA ↔ histology models over MPI.
// Layout and import direction: Docs/Architecture.md.
import PackageDescription

#if canImport(Glibc)
import Glibc
#endif

/// Code generation for the numeric kernels. On x86-64 they are compiled for AVX2 + FMA
/// ("haswell": every x86 HPC node since 2013), which halves the cost of exp-heavy kernels.
/// Override with TRANSCRIPTILE_TARGET_CPU: "native" for the build machine, another LLVM CPU
/// name (e.g. "znver3", "skylake-avx512"), or "generic" for the architecture's baseline.
let kernelSettings: [SwiftSetting] = {
    #if arch(x86_64)
    let defaultCPU = "haswell"
    #else
    let defaultCPU = "generic"
    #endif
    let cpu = getenv("TRANSCRIPTILE_TARGET_CPU").map { String(cString: $0) } ?? defaultCPU
    return cpu == "generic" || cpu.isEmpty ? [] : [.unsafeFlags(["-target-cpu", cpu])]
}()

let package = Package(
    name: "Transcriptile",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "transcriptile", targets: ["CLI"]),
        .executable(name: "transcriptile-coordinator", targets: ["Coordinator"]),
        .executable(name: "transcriptile-worker", targets: ["Worker"]),
        .library(name: "Distributed", targets: ["Distributed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries, found through pkg-config; each shim turns macros into functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CDirectIO"),
        .systemLibrary(name: "COpenSlide", pkgConfig: "openslide", providers: [.apt(["libopenslide-dev"])]),
        .systemLibrary(name: "CImageCodecs", pkgConfig: "libpng", providers: [.apt(["libpng-dev", "libturbojpeg0-dev"])]),
        .systemLibrary(name: "CCairo", pkgConfig: "pangocairo", providers: [.apt(["libcairo2-dev", "libpango1.0-dev"])]),

        // Libraries, in import order (C modules → Tensors → Autograd → NN → {Optim, Models} → Training).
        .target(name: "Terminal"),
        .target(name: "BuildInfo", plugins: ["BuildInfoPlugin"]),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(
            name: "Tensors",
            dependencies: ["COpenBLAS", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: kernelSettings),
        .target(name: "Autograd", dependencies: ["Tensors"]),
        .target(
            name: "NN", dependencies: ["Autograd", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: kernelSettings),
        .target(
            name: "Optim", dependencies: ["Tensors", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: kernelSettings),
        .target(name: "Models", dependencies: ["NN"]),
        .target(name: "Distributed", dependencies: ["CMPI"], swiftSettings: kernelSettings),
        .target(
            name: "Cohorts",
            dependencies: ["CHDF5", "COpenSlide", "CImageCodecs", "Tensors", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Checkpoints", dependencies: ["CZstd", "CDirectIO", "Tensors"], swiftSettings: kernelSettings),
        .target(name: "Plotting", dependencies: ["CCairo"]),
        .target(
            name: "Training",
            dependencies: [
                "Optim", "Models", "Distributed", "Cohorts", "Checkpoints", "Terminal", "Plotting", "BuildInfo",
                .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // Executables. `launch/install` builds them with the Swift runtime and Foundation linked
        // in (`--static-swift-stdlib`), so a compute node needs only the system libraries.
        .executableTarget(
            name: "Coordinator",
            dependencies: ["Training", "BuildInfo", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "Worker", dependencies: ["Training", "BuildInfo"]),
        .executableTarget(
            name: "CLI",
            dependencies: [
                "BuildInfo", "Distributed", "NN", "Optim", "Models", "Cohorts", "Checkpoints", "Training", "Terminal", "Plotting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Tests: one folder per target, plus helpers shared between them.
        .target(name: "TestSupport", dependencies: ["Distributed", "NN"], path: "Tests/TestSupport"),
        .testTarget(name: "NativeLibrariesTests", dependencies: ["CMPI", "COpenBLAS", "CHDF5", "CZstd", "COpenSlide", "CImageCodecs"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "AutogradTests", dependencies: ["Autograd", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "TestSupport"]),
        .testTarget(name: "OptimTests", dependencies: ["Optim", "NN", "TestSupport"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "TestSupport"]),
        .testTarget(name: "CohortsTests", dependencies: ["Cohorts", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"]),
        .testTarget(name: "TerminalTests", dependencies: ["Terminal"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Cohorts", "Checkpoints", "NN", "Autograd", "Tensors", "TestSupport"]),
        .testTarget(name: "PlottingTests", dependencies: ["Plotting", "CCairo"]),
    ]
)
