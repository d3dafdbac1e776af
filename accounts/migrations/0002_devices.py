"""Signed-in devices: a public id and last use for each token, and push credentials.

The public id is added in three steps (nullable, one fresh UUID per existing token,
then unique): a unique column with a default would give every existing row the same
value.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def give_each_token_an_id(apps, schema_editor):
    tokens = apps.get_model("accounts", "AccessToken")
    for token in tokens.objects.filter(public_id__isnull=True).only("digest"):
        tokens.objects.filter(pk=token.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="accesstoken",
            name="public_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(give_each_token_an_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="accesstoken",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="accesstoken",
            name="last_used_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="PushCredential",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("platform", models.CharField(choices=[("webpush", "Web Push"), ("apns", "Apple Push Notification service"), ("fcm", "Firebase Cloud Messaging")], max_length=16)),
                ("data", models.JSONField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("token", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="push", to=settings.KNOX_TOKEN_MODEL)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="push_credentials", to=settings.AUTH_USER_MODEL)),
            ],
        ),
    ]
