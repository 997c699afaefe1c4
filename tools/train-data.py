#!/usr/bin/python3
"""Training data and the before/after sheet of CelGAN's bundled style (used by tools/train-bundled.sh).

  train-data.py prepare OUTDIR   photos/ and styles/ under OUTDIR from Debian packages' images (licenses below)
  train-data.py sheet OUT.png BEFORE AFTER [BEFORE AFTER ...]   a before/after contact sheet

Only images whose licenses allow it, all from Debian packages (see data/README.md):
- photos: python3-skimage's sample photos (public domain per skimage.data's docstrings), mate-backgrounds'
  nature photos (GPL-2+), renpy-demo's photo backgrounds (Expat);
- styles: renpy-thequestion's and renpy-demo's anime backgrounds, CG and character sprites (Expat; the panorama
  is cut into frames; each sprite is composited onto two of the backgrounds, as the games show them: sprites
  flattened on white taught a discriminator that white fields edged by black lines are the style, and the
  generator then drew thick white strokes over photos).
The photos of data/samples (chelsea, coffee) are held out: the sheet shows the style on photos it never saw.
"""
import os
import sys

from PIL import Image

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
RENPY_Q = "/usr/share/games/renpy/the_question/game/images"
RENPY_D = "/usr/share/games/renpy/demo/game/images"
MATE = "/usr/share/backgrounds/mate/nature"

# (source, license) of every training image; the names are stable so that a run is reproducible.
PHOTOS = (
    [(f"{SKIMAGE}/{n}", "public domain (scikit-image sample data)") for n in ("astronaut.png", "rocket.jpg")] +
    [(f"{MATE}/{n}", "GPL-2+ (mate-backgrounds)") for n in
     ("Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg", "LadyBird.jpg",
      "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")] +
    [(f"{RENPY_D}/{n}", "Expat (renpy-demo)") for n in ("bg washington.jpg", "bg whitehouse.jpg", "bg cave.jpg")]
)
STYLES = (
    [(f"{RENPY_Q}/{n}", "Expat (renpy-thequestion)") for n in
     ("bg club.jpg", "bg lecturehall.jpg", "bg meadow.jpg", "bg uni.jpg", "sylvie blue normal.png",
      "sylvie blue smile.png", "sylvie green normal.png", "sylvie green giggle.png")] +
    [(f"{RENPY_D}/{n}", "Expat (renpy-demo)") for n in
     ("bg panorama.webp", "concert1.png", "concert2.png", "concert3.png", "eileen happy.png",
      "eileen concerned.png", "lucy happy.png", "lucy mad.png")]
)


def flat_rgb (im):
    """RGB; images with alpha are composited on white (the sprites' transparent surround)."""
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def is_sprite (path):
    return os.path.splitext(path)[1] == ".png" and os.path.basename(path).split(" ")[0] in ("sylvie", "eileen", "lucy")


def scenes (style_dir):
    """Every sprite (RGBA) onto two of the backgrounds already written to style_dir (bg-*.png), its height 95 % of
    the background's, standing on its bottom edge, left or right of the middle in turn."""
    bgs = sorted(f for f in os.listdir(style_dir) if f.startswith("bg-"))
    sprites = [p for p, _license in STYLES if is_sprite(p)]
    for i, path in enumerate(sprites):
        sp = Image.open(path).convert("RGBA")
        for k, b in enumerate((bgs[(2 * i) % len(bgs)], bgs[(2 * i + 3) % len(bgs)])):
            bg = Image.open(os.path.join(style_dir, b)).convert("RGBA")
            h = round(bg.height * 0.95)
            s = sp.resize((round(sp.width * h / sp.height), h), Image.LANCZOS)
            x = bg.width // 4 - s.width // 2 if (i + k) % 2 == 0 else 3 * bg.width // 4 - s.width // 2
            bg.alpha_composite(s, (max(0, min(x, bg.width - s.width)), bg.height - h))
            name = os.path.splitext(os.path.basename(path))[0].replace(" ", "-")
            bg.convert("RGB").save(os.path.join(style_dir, f"scene-{name}-{os.path.splitext(b)[0][3:]}.png"))
            yield name


def prepare (outdir):
    for sub, items in (("photos", PHOTOS), ("styles", STYLES)):
        d = os.path.join(outdir, sub)
        os.makedirs(d, exist_ok=True)
        for path, _license in items:
            if not os.path.exists(path):
                sys.exit(f"train-data: missing {path} (is its Debian package installed?)")
            if sub == "styles" and is_sprite(path):
                continue  # only in scenes (below)
            im = flat_rgb(Image.open(path))
            base = os.path.splitext(os.path.basename(path))[0].replace(" ", "-")
            if im.width > 2 * im.height:  # the panorama: frames of the game's aspect
                step = im.height * 16 // 9
                frames = [(f"{base}-{i}", im.crop((x, 0, x + step, im.height)))
                          for i, x in enumerate(range(0, im.width - step + 1, step))]
            else:
                frames = [(base, im)]
            for name, fr in frames:
                # Keep crops meaningful: the longer side at most 640 (crops of the 5640-wide
                # wallpapers would be almost flat texture).
                scale = 640 / max(fr.size)
                if scale < 1:
                    fr = fr.resize((round(fr.width * scale), round(fr.height * scale)), Image.LANCZOS)
                fr.save(os.path.join(d, name + ".png"))
    n_scenes = len(list(scenes(os.path.join(outdir, "styles"))))
    n_styles = len(os.listdir(os.path.join(outdir, "styles")))
    print(f"train-data: {len(PHOTOS)} photos, {n_styles} style images ({n_scenes} of them sprites on backgrounds) "
          f"under {outdir}")


def sheet (out, pairs):
    rows = []
    for before, after in zip(pairs[0::2], pairs[1::2]):
        a, b = flat_rgb(Image.open(before)), flat_rgb(Image.open(after))
        h = 300
        a = a.resize((round(a.width * h / a.height), h), Image.LANCZOS)
        b = b.resize((round(b.width * h / b.height), h), Image.LANCZOS)
        rows.append((a, b))
    w = max(a.width + b.width for a, b in rows) + 30
    img = Image.new("RGB", (w, len(rows) * 310 + 10), "white")
    y = 10
    for a, b in rows:
        img.paste(a, (10, y))
        img.paste(b, (20 + a.width, y))
        y += 310
    img.save(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "sheet" and len(sys.argv) % 2 == 1:
        sheet(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
