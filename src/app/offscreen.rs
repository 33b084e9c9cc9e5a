//! egui drawn offscreen by egui-wgpu on a [`Gpu`]'s device, as eframe draws into a window
//! (`advseg bench app` times the frames). egui-wgpu's API takes wgpu's own device, queue,
//! textures and render passes, so this module is the one place outside `src/gpu/` that names
//! wgpu types ([`Gpu::render_handles`]); compute never comes through here.

use crate::Gpu;
use eframe::egui_wgpu::{self, wgpu};
use std::sync::Arc;

/// Draws egui output into an offscreen texture, as eframe draws into a window's surface.
pub(super) struct Offscreen {
    gpu: Arc<Gpu>,
    renderer: egui_wgpu::Renderer,
    target: wgpu::Texture,
}

impl Offscreen {
    pub(super) fn new(size: [u32; 2]) -> anyhow::Result<Self> {
        // The window has its own device, as eframe creates one next to the trainer's.
        let gpu = Gpu::new()?;
        let format = wgpu::TextureFormat::Rgba8Unorm;
        let (device, _) = gpu.render_handles();
        let renderer =
            egui_wgpu::Renderer::new(device, format, egui_wgpu::RendererOptions::default());
        let target = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("bench frame"),
            size: wgpu::Extent3d {
                width: size[0],
                height: size[1],
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            view_formats: &[],
        });
        Ok(Offscreen {
            gpu,
            renderer,
            target,
        })
    }

    pub(super) fn draw(
        &mut self,
        ctx: &egui::Context,
        mut out: egui::FullOutput,
    ) -> anyhow::Result<()> {
        let (device, queue) = self.gpu.render_handles();
        let mut delta = std::mem::take(&mut out.textures_delta);
        for (id, imgs) in delta.set.drain() {
            for img in imgs {
                self.renderer.update_texture(device, queue, id, &img);
            }
        }
        let jobs = ctx.tessellate(out.shapes, out.pixels_per_point);
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [self.target.width(), self.target.height()],
            pixels_per_point: out.pixels_per_point,
        };
        let mut enc = device.create_command_encoder(&Default::default());
        let user = self
            .renderer
            .update_buffers(device, queue, &mut enc, &jobs, &screen);
        let view = self.target.create_view(&Default::default());
        {
            let mut pass = enc
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("bench frame"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: &view,
                        resolve_target: None,
                        ops: wgpu::Operations {
                            load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                            store: wgpu::StoreOp::Store,
                        },
                        depth_slice: None,
                    })],
                    ..Default::default()
                })
                .forget_lifetime();
            self.renderer.render(&mut pass, &jobs, &screen);
        }
        queue.submit(user.into_iter().chain(std::iter::once(enc.finish())));
        // A presented frame is a finished frame: wait, as a swap chain would.
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for id in delta.free.drain() {
            self.renderer.free_texture(&id);
        }
        Ok(())
    }
}
