import Foundation
import TestSupport
import XCTest

/// RNA-CDM's cascade under real mpirun: a base and a super-resolution stage trained on tiles
/// with the frozen VAE's latent, then sampled from a cohort's patients and from an RNA file, on
/// one rank and on two (the same tiles).
extension TrainingRunTests {
    func testDiffusionCascadeTrainsAndSamplesTheSameTilesOnAnyRankCount() throws {
        let cohort = try tileCohort()
        let vaeConfig = Self.scratch.appendingPathComponent("diffusion-vae-\(UUID().uuidString).yaml")
        try """
            task: rna-vae
            cohort: \(cohort.path)
            model: {hidden: [32], latent: 8}
            train: {steps: 10, global_batch: 24, micro_batch: 8, seed: 3}
            liveness: {timeout_s: 30}
            """.write(to: vaeConfig, atomically: true, encoding: .utf8)
        let (vae, vaeRun) = try train(vaeConfig, workers: 2)
        XCTAssertEqual(vae.status, 0, vae.output)

        let regressorConfig = Self.scratch.appendingPathComponent("fractions-\(UUID().uuidString).yaml")
        try """
            task: tile-fractions
            cohort: \(cohort.path)
            model: {depth: 2, width: 8, dropout: 0}
            optimizer: {lr: 0.01}
            schedule: {warmup_steps: 5}
            train: {steps: 60, global_batch: 32, seed: 2}
            evaluation: {every_steps: 30}
            liveness: {timeout_s: 30}
            """.write(to: regressorConfig, atomically: true, encoding: .utf8)
        let (regressor, regressorRun) = try train(regressorConfig, workers: 2, timeout: 300)
        XCTAssertEqual(regressor.status, 0, regressor.output)
        let fractions = try XCTUnwrap(try json(regressorRun.appendingPathComponent("summary.json"))["evaluation"] as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(fractions["r"] as? Double), 0.5, "the regressor reads fractions from tiles\n" + regressor.stdout)
        XCTAssertNotNil(fractions["r.tumour"] as? Double)

        let baseConfig = Self.scratch.appendingPathComponent("diffusion-base-\(UUID().uuidString).yaml")
        try """
            task: rna-cdm-diffusion
            cohort: \(cohort.path)
            companions: {rna_encoder: \(vaeRun.path), fraction_regressor: \(regressorRun.path)}
            model: {stage: base, image_size: 8, dim: 8, dim_mults: [1, 2], blocks_per_level: 1, attention_levels: [1], heads: 2, condition_dim: 8, timesteps: 100}
            optimizer: {lr: 0.002}
            train: {steps: 16, global_batch: 8, seed: 4, ema: {decay: 0.9}}
            evaluation: {every_steps: 8}
            liveness: {timeout_s: 30}
            """.write(to: baseConfig, atomically: true, encoding: .utf8)
        let (base, baseRun) = try train(baseConfig, workers: 2, timeout: 300)
        XCTAssertEqual(base.status, 0, base.output)
        XCTAssertTrue(base.stdout.contains("90/30/30 train/validation/test patients (360/120/120 tiles)"), base.stdout)
        let metrics = try String(contentsOf: baseRun.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"split\":\"validation\""), metrics)
        let plan = try json(baseRun.appendingPathComponent("run_plan.json"))
        XCTAssertEqual((plan["companions"] as? [[String: Any]])?.map { $0["task"] as? String }, ["rna-vae", "tile-fractions"])
        let evaluation = try XCTUnwrap(try json(baseRun.appendingPathComponent("summary.json"))["evaluation"] as? [String: Any])
        for key in ["fraction_correlation", "fraction_correlation_real", "fraction_correlation.tumour", "frechet_distance", "frechet_floor",
                    "edit_effect", "edit_effect.necrosis", "edit_off_target",
                    "pretraining_gain", "pretraining_accuracy_scratch", "pretraining_accuracy_pretrained"] {
            XCTAssertNotNil(evaluation[key] as? Double, "\(key) in summary.json's evaluation: \(evaluation)")
        }
        XCTAssertEqual(evaluation["generated_tiles"] as? Double, 24 * 3, "3 tiles for each of 24 test patients (model.evaluation_patients)")
        for plot in ["samples.png", "samples.svg", "editing.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: baseRun.appendingPathComponent(plot).path), plot)
        }

        let (sr, srRun) = try train(baseConfig, workers: 2, [
            "model.stage=super_resolution", "model.image_size=16", "model.lowres_size=8", "model.attention_levels=[1]", "train.steps=8",
            "companions.lower_stage=\(baseRun.path)"], timeout: 300)
        XCTAssertEqual(sr.status, 0, sr.output)
        XCTAssertNotNil((try json(srRun.appendingPathComponent("summary.json"))["evaluation"] as? [String: Any])?["frechet_distance"] as? Double,
                        "the evaluation sampled the cascade base → super-resolution")
        let (wrongLower, _) = try train(baseConfig, workers: 2, ["companions.lower_stage=\(baseRun.path)"])
        XCTAssertEqual(wrongLower.status, 2, wrongLower.output)
        XCTAssertTrue(wrongLower.stderr.contains("companions.lower_stage: that run makes 8 px tiles; this stage is a base stage"), wrongLower.stderr)

        let transcriptile = ProcessRunner.product("transcriptile")
        func sample(ranks: Int, _ extra: [String]) throws -> (ProcessRunner.Result, URL) {
            let out = Self.scratch.appendingPathComponent("samples-\(UUID().uuidString)")
            let arguments = ["sample", "--base", baseRun.path, "--sr", srRun.path, "--n", "3", "--steps", "4", "--out", out.path] + extra
            let result = ranks == 1 ? try ProcessRunner.run(transcriptile, arguments, timeout: 300) : try ProcessRunner.mpirun(ranks: ranks, transcriptile, arguments)
            return (result, out)
        }
        let patients = ["--cohort", cohort.path, "--patient", "SIM-000001,SIM-000002"]
        let (one, oneOut) = try sample(ranks: 1, patients)
        XCTAssertEqual(one.status, 0, one.output)
        XCTAssertTrue(one.stdout.contains("6 tiles of 16 px from 2 profile(s) on 1 rank(s)"), one.stdout)
        let (two, twoOut) = try sample(ranks: 2, patients)
        XCTAssertEqual(two.status, 0, two.output)
        for k in 0..<3 {
            for id in ["SIM-000001", "SIM-000002"] {
                let name = "tiles/\(id)-\(k).png"
                XCTAssertEqual(try Data(contentsOf: oneOut.appendingPathComponent(name)), try Data(contentsOf: twoOut.appendingPathComponent(name)),
                               "\(name): the same tile on 1 and 2 ranks")
            }
        }
        for file in ["samples.h5", "contact_sheet.png", "contact_sheet.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: oneOut.appendingPathComponent(file).path), file)
        }

        // From an RNA file: the cohort's genes, one profile; a gene missing is refused.
        let genes = (0..<50).map { "SIM\($0)" }
        let profile = Self.scratch.appendingPathComponent("profile-\(UUID().uuidString).tsv")
        try (["gene\tsample_a"] + genes.enumerated().map { "\($1)\t\(100 + $0)" }).joined(separator: "\n").write(to: profile, atomically: true, encoding: .utf8)
        let (fromFile, fileOut) = try sample(ranks: 1, ["--rna", profile.path, "--guidance", "1", "--sampler", "ddpm"])
        XCTAssertEqual(fromFile.status, 0, fromFile.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: fileOut.appendingPathComponent("tiles/sample_a-2.png").path))
        try (["gene\tsample_a"] + genes.dropFirst().map { "\($0)\t1" }).joined(separator: "\n").write(to: profile, atomically: true, encoding: .utf8)
        let (missingGene, _) = try sample(ranks: 1, ["--rna", profile.path])
        XCTAssertEqual(missingGene.status, 2, missingGene.output)
        XCTAssertTrue(missingGene.stderr.contains("lacks 1 of the 50 genes the stage-1 run reads (e.g. SIM0)"), missingGene.stderr)

        let unchained = try ProcessRunner.run(transcriptile, ["sample", "--base", srRun.path, "--cohort", cohort.path, "--patient", "SIM-000001",
                                                                   "--out", Self.scratch.appendingPathComponent("never").path])
        XCTAssertEqual(unchained.status, 2, unchained.output)
        XCTAssertTrue(unchained.stderr.contains("the first stage must be a base stage, not super_resolution"), unchained.stderr)
        let (notAPatient, _) = try sample(ranks: 1, ["--cohort", cohort.path, "--patient", "nobody"])
        XCTAssertEqual(notAPatient.status, 2, notAPatient.output)
        XCTAssertTrue(notAPatient.stderr.contains("--patient nobody is not in"), notAPatient.stderr)

        let (noEncoder, _) = try train(baseConfig, workers: 2, ["companions.rna_encoder="])
        XCTAssertEqual(noEncoder.status, 2, noEncoder.output)
        XCTAssertTrue(noEncoder.stderr.contains("companions.rna_encoder: rna-cdm-diffusion needs a trained rna-vae run"), noEncoder.stderr)
        let (tooLarge, _) = try train(baseConfig, workers: 2, ["model.image_size=12", "model.dim_mults=[1]", "model.attention_levels=[0]"])
        XCTAssertEqual(tooLarge.status, 2, tooLarge.output)
        XCTAssertTrue(tooLarge.stderr.contains("model.image_size 12 must divide the cohort's tile size 16"), tooLarge.stderr)
    }
}
