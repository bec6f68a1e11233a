"""Helpers that PIIP configs call (mmengine Python configs may import modules)."""


def resized_data(base, img_scale):
    """The data keys of a config whose ``Resize`` steps take ``img_scale`` instead of the base's.

    ``base`` is the config's ``_base_`` (``train_pipeline`` / ``test_pipeline`` from a dataset
    base); returns ``(train_pipeline, test_pipeline, train_dataloader, val_dataloader,
    test_dataloader)``, the dataloaders as overrides that only replace the pipelines::

        img_scale = (1120, 1120 * 800 // 1333)
        (train_pipeline, test_pipeline, train_dataloader, val_dataloader,
         test_dataloader) = config_utils.resized_data(_base_, img_scale)
    """
    def rescale(pipeline):
        return [dict(t, scale=img_scale) if t['type'] == 'Resize' else t for t in pipeline]

    train, test = rescale(base.train_pipeline), rescale(base.test_pipeline)
    return (train, test, dict(dataset=dict(pipeline=train)), dict(dataset=dict(pipeline=test)),
            dict(dataset=dict(pipeline=test)))
