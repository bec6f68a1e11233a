"""Helpers for configs that change one knob of a base config's pipelines.

Used in Python configs (mmengine exposes the base's variables as ``_base_.NAME``)::

    (train_pipeline, test_pipeline, train_dataloader, val_dataloader,
     test_dataloader) = config_utils.camera_aug_data(_base_, (704, 256), (0.38, 0.55), 0.44)
"""


def camera_aug_data(base, final_size, resize_train, resize_test, wrapped=True):
    """The data keys of a camera config whose ``MultiViewImageAug`` steps use another output
    size and resize ranges than the base's.

    Args:
        base: the config's ``_base_`` (``train_pipeline`` / ``test_pipeline``).
        final_size: ``(W, H)`` of the network input.
        resize_train: ``(min, max)`` training resize factors.
        resize_test: the test resize factor.
        wrapped: the train dataset is a wrapper (``CBGSDataset``) around the scene dataset.

    Returns:
        ``(train_pipeline, test_pipeline, train_dataloader, val_dataloader, test_dataloader)``,
        the dataloaders as overrides that only replace the pipelines.
    """
    def resized(pipeline, resize_range):
        return [dict(t, final_size=tuple(final_size), resize_range=tuple(resize_range))
                if t['type'] == 'MultiViewImageAug' else t for t in pipeline]

    train = resized(base.train_pipeline, resize_train)
    test = resized(base.test_pipeline, (resize_test, resize_test))
    train_ds = dict(dataset=dict(pipeline=train)) if wrapped else dict(pipeline=train)
    return (train, test, dict(dataset=train_ds), dict(dataset=dict(pipeline=test)),
            dict(dataset=dict(pipeline=test)))
