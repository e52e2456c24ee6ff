import Distributed
import Foundation

/// A training run's configuration: the YAML file of DESIGN §8. Every key has a documented
/// default (`Docs/Running.md`); the stable keys scripts rely on are `task`, `cohort`,
/// `train.steps`, `train.global_batch`, `train.seed`, `checkpoint.every_steps`,
/// `checkpoint.keep_last`, `exchange.algorithm`, `exchange.bucket_mb` and `threads_per_rank`.
/// The `model` section belongs to the task and is decoded by it.
public struct RunConfig: Codable, Sendable, Equatable {
    public var task = CancerTypeTask.name
    /// The cohort directory (relative paths are relative to the config file).
    public var cohort = ""
    /// Where the run writes its records; `--run-dir` overrides. Empty: runs/<config name>.
    public var runDir = ""
    /// BLAS and kernel threads per worker rank.
    public var threadsPerRank = 1
    public var optimizer = Optimizer()
    public var schedule = Schedule()
    public var train = Train()
    public var evaluation = Evaluation()
    public var checkpoint = Checkpoint()
    public var exchange = Exchange()
    public var liveness = Liveness()
    public var progress = Progress()
    /// Other trained runs the task uses frozen, by the names the task gives them (its
    /// directory or one of its checkpoints; relative paths as `cohort`).
    public var companions: [String: String] = [:]

    public init() {}

    public struct Optimizer: Codable, Sendable, Equatable {
        /// adamw, adam or sgd.
        public var name = "adamw"
        public var lr = 1e-3
        public var weightDecay = 0.01
        public var beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
        /// SGD only.
        public var momentum = 0.9
        /// Clip the global gradient norm to this (0: no clipping).
        public var clipNorm = 1.0
        /// Parameter groups: a parameter takes the first group with a pattern matching its name.
        public var groups: [Group] = []

        enum CodingKeys: String, CodingKey {
            case name, lr, weightDecay = "weight_decay", beta1, beta2, epsilon, momentum, clipNorm = "clip_norm", groups
        }

        /// Parameters whose names match one of `match` (shell patterns: `*.bias`, `norm*`) train
        /// at `lr_scale` × the learning rate, with weight decay or without.
        public struct Group: Codable, Sendable, Equatable {
            public var match: [String] = []
            public var lrScale = 1.0
            public var weightDecay = true

            enum CodingKeys: String, CodingKey { case match, lrScale = "lr_scale", weightDecay = "weight_decay" }

            public init() {}

            /// A group in a config lists only what differs from the defaults.
            public init(from decoder: Decoder) throws {
                let values = try decoder.container(keyedBy: CodingKeys.self)
                match = try values.decodeIfPresent([String].self, forKey: .match) ?? []
                lrScale = try values.decodeIfPresent(Double.self, forKey: .lrScale) ?? 1
                weightDecay = try values.decodeIfPresent(Bool.self, forKey: .weightDecay) ?? true
            }
        }
    }

    /// Linear warm-up to `optimizer.lr`, then cosine decay to `min_lr` at the last step.
    public struct Schedule: Codable, Sendable, Equatable {
        public var warmupSteps = 0
        public var minLr = 0.0

        enum CodingKeys: String, CodingKey { case warmupSteps = "warmup_steps", minLr = "min_lr" }
    }

    public struct Train: Codable, Sendable, Equatable {
        /// Optimizer steps; 0 means `epochs` × batches per epoch.
        public var steps = 0
        public var epochs = 0
        /// Samples per optimizer step, whatever the number of workers.
        public var globalBatch = 64
        /// Samples per forward/backward pass; 0: global_batch / workers, rounded up. Fix it to
        /// make every computation (and, with `reproducible`, the weights) independent of the
        /// number of workers.
        public var microBatch = 0
        public var seed = 0
        /// Patient fractions for training and validation; the rest is the test split.
        public var split = Split()
        public var dropLast = true
        public var ema = EMA()
        /// Another run (its directory, or one of its checkpoints) whose weights start this one:
        /// every tensor of the same name and shape is loaded, the others keep their
        /// initialisation (e.g. a classifier head for another number of classes).
        public var initFrom = ""

        public struct Split: Codable, Sendable, Equatable {
            public var train = 0.6, validation = 0.2
        }

        /// An exponential moving average of the weights, kept beside them, checkpointed, and used
        /// by `evaluate` and `encode`: ema ← decay·ema + (1 − decay)·weights after every step
        /// past `start_step` (until then it copies the weights). decay 0: none.
        public struct EMA: Codable, Sendable, Equatable {
            public var decay = 0.0
            public var startStep = 0

            enum CodingKeys: String, CodingKey { case decay, startStep = "start_step" }
        }

        enum CodingKeys: String, CodingKey {
            case steps, epochs, globalBatch = "global_batch", microBatch = "micro_batch", seed, split, dropLast = "drop_last", ema,
                 initFrom = "init_from"
        }
    }

    public struct Evaluation: Codable, Sendable, Equatable {
        /// Evaluate on the validation split every this many steps (0: only at the end).
        public var everySteps = 0
        /// Early stopping: end training once the validation loss has not improved by more than
        /// `min_delta` for this many evaluations in a row, and restore the weights of the best
        /// one (0: never stop early).
        public var patience = 0
        public var minDelta = 0.0

        enum CodingKeys: String, CodingKey { case everySteps = "every_steps", patience, minDelta = "min_delta" }
    }

    /// Checkpoint cadence and retention (Docs/Checkpoints.md). A signal (SIGTERM, SIGINT) always
    /// saves one at the next step boundary.
    public struct Checkpoint: Codable, Sendable, Equatable {
        /// Save after every this many steps (0: not by steps).
        public var everySteps = 0
        /// Save when this many minutes passed since the last save (0: not by time).
        public var everyMinutes = 0.0
        /// Keep the newest this many checkpoints…
        public var keepLast = 3
        /// …and every one whose step is a multiple of this (0: none).
        public var keepEvery = 0
        /// Save after the last step.
        public var atEnd = true

        enum CodingKeys: String, CodingKey {
            case everySteps = "every_steps", everyMinutes = "every_minutes", keepLast = "keep_last", keepEvery = "keep_every", atEnd = "at_end"
        }
    }

    public struct Exchange: Codable, Sendable, Equatable {
        public var algorithm = ExchangeAlgorithm.mpi
        public var bucketMb = 4.0
        /// 1: ZeRO-1 — each worker keeps and updates only its partition of the optimizer state,
        /// then the updated parameters are all-gathered. 0: every worker updates everything.
        public var zeroStage = 0

        enum CodingKeys: String, CodingKey { case algorithm, bucketMb = "bucket_mb", zeroStage = "zero_stage" }
    }

    public struct Liveness: Codable, Sendable, Equatable {
        /// End the job when no worker has reported for this long (seconds).
        public var timeoutS = 30.0

        enum CodingKeys: String, CodingKey { case timeoutS = "timeout_s" }
    }

    public struct Progress: Codable, Sendable, Equatable {
        /// When stderr is not a terminal, print a progress line at most this often (seconds).
        public var everyS = 10.0

        enum CodingKeys: String, CodingKey { case everyS = "every_s" }
    }

    enum CodingKeys: String, CodingKey {
        case task, cohort, runDir = "run_dir", threadsPerRank = "threads_per_rank", optimizer, schedule, train, evaluation,
             checkpoint, exchange, liveness, progress, companions
    }

    /// Problems no single key's type can express, each naming its key.
    func problems() -> [String] {
        var problems = [String]()
        func require(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { problems.append(message()) } }
        require(!cohort.isEmpty, "cohort: required (the cohort directory to train on)")
        require((1...1024).contains(threadsPerRank), "threads_per_rank: must be in 1…1024, got \(threadsPerRank)")
        require(["adamw", "adam", "sgd"].contains(optimizer.name), "optimizer.name: must be adamw, adam or sgd, got '\(optimizer.name)'")
        require(optimizer.lr > 0 && optimizer.lr.isFinite, "optimizer.lr: must be a finite number > 0, got \(optimizer.lr)")
        require(optimizer.weightDecay >= 0 && optimizer.weightDecay.isFinite, "optimizer.weight_decay: must be a finite number ≥ 0, got \(optimizer.weightDecay)")
        require((0..<1).contains(optimizer.beta1), "optimizer.beta1: must be in [0, 1), got \(optimizer.beta1)")
        require((0..<1).contains(optimizer.beta2), "optimizer.beta2: must be in [0, 1), got \(optimizer.beta2)")
        require(optimizer.epsilon > 0 && optimizer.epsilon.isFinite, "optimizer.epsilon: must be a finite number > 0, got \(optimizer.epsilon)")
        require((0..<1).contains(optimizer.momentum), "optimizer.momentum: must be in [0, 1), got \(optimizer.momentum)")
        require(optimizer.clipNorm >= 0 && !optimizer.clipNorm.isNaN, "optimizer.clip_norm: must be ≥ 0 (0 turns clipping off), got \(optimizer.clipNorm)")
        for (index, group) in optimizer.groups.enumerated() {
            require(!group.match.isEmpty && !group.match.contains(""), "optimizer.groups[\(index)].match: one or more name patterns, e.g. [\"*.bias\", \"norm*\"]")
            require(group.lrScale >= 0 && group.lrScale.isFinite, "optimizer.groups[\(index)].lr_scale: must be a finite number ≥ 0 (0 freezes the group), got \(group.lrScale)")
        }
        require(schedule.warmupSteps >= 0, "schedule.warmup_steps: must be ≥ 0, got \(schedule.warmupSteps)")
        require(schedule.minLr >= 0 && schedule.minLr <= optimizer.lr, "schedule.min_lr: must be in 0…optimizer.lr, got \(schedule.minLr)")
        require(train.steps > 0 || train.epochs > 0, "train.steps / train.epochs: set one of them to a positive number")
        require((0...1_000_000_000).contains(train.steps), "train.steps: must be in 0…1000000000, got \(train.steps)")
        require((0...1_000_000).contains(train.epochs), "train.epochs: must be in 0…1000000, got \(train.epochs)")
        require((1...10_000_000).contains(train.globalBatch), "train.global_batch: must be in 1…10000000, got \(train.globalBatch)")
        require(train.microBatch >= 0 && train.microBatch <= train.globalBatch,
                "train.micro_batch: must be in 0…train.global_batch (\(train.globalBatch)), got \(train.microBatch)")
        require(train.seed >= 0, "train.seed: must be ≥ 0, got \(train.seed)")
        require(train.split.train > 0 && train.split.validation >= 0 && train.split.train + train.split.validation <= 1,
                "train.split: need train > 0, validation ≥ 0 and train + validation ≤ 1, got \(train.split.train) and \(train.split.validation)")
        require((0..<1).contains(train.ema.decay), "train.ema.decay: must be in [0, 1) (0 keeps no average; 0.999 is usual), got \(train.ema.decay)")
        require(train.ema.startStep >= 0, "train.ema.start_step: must be ≥ 0, got \(train.ema.startStep)")
        require(evaluation.everySteps >= 0, "evaluation.every_steps: must be ≥ 0, got \(evaluation.everySteps)")
        require(evaluation.patience >= 0, "evaluation.patience: must be ≥ 0, got \(evaluation.patience)")
        require(evaluation.minDelta >= 0 && evaluation.minDelta.isFinite, "evaluation.min_delta: must be a finite number ≥ 0, got \(evaluation.minDelta)")
        require(evaluation.patience == 0 || evaluation.everySteps > 0,
                "evaluation.patience: early stopping needs validation during training; set evaluation.every_steps > 0")
        require(checkpoint.everySteps >= 0, "checkpoint.every_steps: must be ≥ 0, got \(checkpoint.everySteps)")
        require(checkpoint.keepLast >= 1, "checkpoint.keep_last: must be ≥ 1, got \(checkpoint.keepLast)")
        require(checkpoint.everyMinutes >= 0 && checkpoint.everyMinutes.isFinite, "checkpoint.every_minutes: must be a finite number ≥ 0, got \(checkpoint.everyMinutes)")
        require(checkpoint.keepEvery >= 0, "checkpoint.keep_every: must be ≥ 0, got \(checkpoint.keepEvery)")
        require(exchange.bucketMb > 0 && exchange.bucketMb <= 4096, "exchange.bucket_mb: must be in (0, 4096], got \(exchange.bucketMb)")
        require((0...1).contains(exchange.zeroStage), "exchange.zero_stage: must be 0 (off) or 1 (ZeRO-1), got \(exchange.zeroStage)")
        require(liveness.timeoutS >= 1 && liveness.timeoutS <= 86_400, "liveness.timeout_s: must be in 1…86400 seconds, got \(liveness.timeoutS)")
        require(progress.everyS > 0 && progress.everyS.isFinite, "progress.every_s: must be a finite number > 0, got \(progress.everyS)")
        return problems
    }
}
