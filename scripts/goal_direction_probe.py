"""Can a goal-view feature head tell which way the goal lies? Supervised, no RL: the start frame and goal frame of
glance episodes (``GoalViewEnv(excursion="glance")``: the goal a side view 20-40 degrees to the left or right,
still partly in sight) from the twin, labelled left / right, and each head with a linear classifier on top,
trained with Adam on the training pairs and scored on held-out ones. A head that cannot learn this from labels
will not learn it from PPO's rewards either.

    python scripts/goal_direction_probe.py [--pairs 3000] [--test 300] [--epochs 8] [--threads 1]

Training pairs use reset seeds 0.., held-out pairs the benchmark's evaluation seeds (100,000..). Prints the held-out
accuracy per epoch for the early-fusion CNN (``GoalFrameExtractor``) and the Siamese column correlation
(``GoalCorrelationExtractor``).
"""

import argparse
import time

import numpy as np
import torch


def collect(n: int, seed0: int):
    import gymnasium as gym

    import camworld  # noqa: F401  (registers the ids)

    env = gym.make("CamWorld-GoalView-v0", excursion="glance", max_episode_steps=8)
    frames, goals, left = [], [], []
    try:
        for i in range(n):
            obs, info = env.reset(seed=seed0 + i)
            frames.append(obs["frame"])
            goals.append(obs["goal"])
            left.append(np.sin(info["goal_pose"][2] - info["pose"][2]) > 0)
        space = env.observation_space
    finally:
        env.close()
    return np.stack(frames), np.stack(goals), np.array(left, np.int64), space


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3000)
    p.add_argument("--test", type=int, default=300)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if min(args.pairs, args.test, args.epochs) < 1:
        raise SystemExit("--pairs, --test and --epochs must be >= 1")
    torch.set_num_threads(args.threads)
    from camworld.agents.features import GoalCorrelationExtractor, GoalFrameExtractor

    t0 = time.perf_counter()
    f_tr, g_tr, y_tr, space = collect(args.pairs, 0)
    f_te, g_te, y_te, _ = collect(args.test, 100_000)
    print(f"{args.pairs} training and {args.test} held-out pairs ({y_tr.mean():.2f} / {y_te.mean():.2f} left) in "
          f"{time.perf_counter() - t0:.0f} s")

    def tensor(a):
        return torch.as_tensor(a).permute(0, 3, 1, 2).float() / 255.0

    for head_cls in (GoalFrameExtractor, GoalCorrelationExtractor):
        torch.manual_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        head = head_cls(space, features_dim=256)
        clf = torch.nn.Linear(256, 2)
        opt = torch.optim.Adam([*head.parameters(), *clf.parameters()], lr=3e-4)
        accs = []
        for _ in range(args.epochs):
            order = rng.permutation(len(y_tr))
            for i in range(0, len(order), 64):
                j = order[i:i + 64]
                logits = clf(head({"frame": tensor(f_tr[j]), "goal": tensor(g_tr[j])}))
                loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y_tr[j]))
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                pred = clf(head({"frame": tensor(f_te), "goal": tensor(g_te)})).argmax(1).numpy()
            accs.append(float((pred == y_te).mean()))
        print(f"{head_cls.__name__}: held-out accuracy by epoch {' '.join(f'{a:.2f}' for a in accs)}")


if __name__ == "__main__":
    main()
